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
SESSIONS_LEFT = sessions.SESSION_SECONDS - 60   # (a session signed in then has a minute left at NOW)


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
    assert sessions.decode(value, secret, ACCOUNTS, TOKENS, now=NOW) is None   # a viewer needs its token's grant
    session = sessions.sign_in(ACCOUNTS, TOKENS, "a", token="viewer-token", now=NOW - SESSIONS_LEFT)
    value = sessions.encode(session, secret)
    assert sessions.decode(value, secret, ACCOUNTS, TOKENS, now=NOW) == session
    assert sessions.decode(value, secret, ACCOUNTS, TOKENS, now=NOW + 61) is None          # expired
    payload, mac = value.split(".")
    forged = base64.urlsafe_b64encode(b'{"a":"a","r":"operator","e":9999999999}').decode()
    assert sessions.decode(f"{forged}.{mac}", secret, ACCOUNTS, TOKENS, now=NOW) is None   # a viewer made operator
    assert sessions.decode(payload, secret, ACCOUNTS, TOKENS, now=NOW) is None
    assert sessions.decode("garbage", secret, ACCOUNTS, TOKENS, now=NOW) is None
    # another set of keys (a key changed): sessions signed before end
    other = sessions.session_secret({**ACCOUNTS, "a": b"x" * 32})
    assert sessions.decode(value, other, ACCOUNTS, TOKENS, now=NOW) is None
    # an account removed since: its sessions end
    assert sessions.decode(value, secret, {"b": ACCOUNTS["b"]}, TOKENS, now=NOW) is None
    # a viewer's token changed or removed since: the sessions it opened end
    assert sessions.decode(value, secret, ACCOUNTS, {"a": "another-token"}, now=NOW) is None
    assert sessions.decode(value, secret, ACCOUNTS, {}, now=NOW) is None


def test_what_a_client_may_send_never_raises() -> None:
    secret = sessions.session_secret(ACCOUNTS)
    for value in ("x.\u00e9", "\u00e9.x", ".", "a.b.c", "=.="):
        assert sessions.decode(value, secret, ACCOUNTS, TOKENS, now=NOW) is None
    for key, token in ((123, None), (None, ["viewer-token"]), ({"k": 1}, None)):
        with pytest.raises(sessions.SignInFailed):
            sessions.sign_in(ACCOUNTS, TOKENS, "a", key=key, token=token, now=NOW)
    with pytest.raises(sessions.SignInFailed):
        sessions.sign_in(ACCOUNTS, TOKENS, ["a"], key=base64.b64encode(KEY).decode(), now=NOW)
