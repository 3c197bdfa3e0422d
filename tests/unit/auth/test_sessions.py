"""Dashboard sessions: who may sign in as what, and cookies that cannot be forged, kept past expiry or
carried to another account."""

from __future__ import annotations

import base64

import pytest

from openbatch.auth import sessions

KEY = b"0123456789abcdef0123456789abcdef"
ACCOUNTS = {"a": KEY, "b": b"fedcba9876543210fedcba9876543210"}
TOKENS = {"a": "viewer-token"}
NOW = 1_800_000_000.0


def test_the_key_signs_in_an_operator_and_the_token_a_viewer() -> None:
    operator = sessions.sign_in(ACCOUNTS, TOKENS, "a", key=base64.b64encode(KEY).decode(), now=NOW)
    assert (operator.account, operator.role, operator.may_change) == ("a", "operator", True)
    assert operator.expires == NOW + sessions.SESSION_SECONDS
    viewer = sessions.sign_in(ACCOUNTS, TOKENS, "a", token="viewer-token", now=NOW)
    assert (viewer.role, viewer.may_change) == ("viewer", False)


@pytest.mark.parametrize("account, key, token", [
    ("a", base64.b64encode(b"wrong").decode(), None),
    ("a", "not base64!", None),
    ("b", base64.b64encode(KEY).decode(), None),      # a's key does not open b
    ("b", None, "viewer-token"),                      # nor a's token
    ("nobody", base64.b64encode(KEY).decode(), None),
    ("a", None, "guess"),
    ("a", None, None),
])
def test_anything_else_is_refused(account: str, key: str | None, token: str | None) -> None:
    with pytest.raises(sessions.SignInFailed):
        sessions.sign_in(ACCOUNTS, TOKENS, account, key=key, token=token, now=NOW)


def test_a_cookie_round_trips_and_cannot_be_altered_or_kept_past_its_time() -> None:
    secret = sessions.session_secret(ACCOUNTS)
    session = sessions.Session("a", "viewer", int(NOW) + 60)
    value = sessions.encode(session, secret)
    assert sessions.decode(value, secret, ACCOUNTS, now=NOW) == session
    assert sessions.decode(value, secret, ACCOUNTS, now=NOW + 61) is None          # expired
    payload, mac = value.split(".")
    forged = base64.urlsafe_b64encode(b'{"a":"a","r":"operator","e":9999999999}').decode()
    assert sessions.decode(f"{forged}.{mac}", secret, ACCOUNTS, now=NOW) is None   # a viewer made operator
    assert sessions.decode(payload, secret, ACCOUNTS, now=NOW) is None
    assert sessions.decode("garbage", secret, ACCOUNTS, now=NOW) is None
    # another set of keys (a key changed): sessions signed before end
    other = sessions.session_secret({**ACCOUNTS, "a": b"x" * 32})
    assert sessions.decode(value, other, ACCOUNTS, now=NOW) is None
    # an account removed since: its sessions end
    assert sessions.decode(value, secret, {"b": ACCOUNTS["b"]}, now=NOW) is None
