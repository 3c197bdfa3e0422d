"""Dashboard sessions: a signed cookie naming the account and what the holder may do.

Signing in takes the account's key (an operator: everything the key allows) or a dashboard token
configured for the account (a viewer: reads only). The cookie holds no secret: its payload
(account, role, expiry) is signed with HMAC-SHA256 under a secret derived from every account's key,
so every server sharing the accounts accepts it, and changing a key ends the sessions signed before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal, Mapping

COOKIE = "openbatch_session"
#: How long a session lasts after signing in.
SESSION_SECONDS = 12 * 3600
Role = Literal["operator", "viewer"]


@dataclass(frozen=True)
class Session:
    account: str
    role: Role
    expires: int
    #: A viewer's: which dashboard token opened it (a fingerprint): changing or removing the token ends it.
    grant: str = ""

    @property
    def may_change(self) -> bool:
        return self.role == "operator"


class SignInFailed(Exception):
    """Wrong account, key or token (which one is not said)."""


def session_secret(accounts: Mapping[str, bytes]) -> bytes:
    material = b"".join(name.encode() + b"\0" + key for name, key in sorted(accounts.items()))
    return hmac.new(material, b"openbatch dashboard sessions", hashlib.sha256).digest()


def sign_in(accounts: Mapping[str, bytes], tokens: Mapping[str, str], account: object, *, key: object = None,
            token: object = None, now: float | None = None) -> Session:
    """The session the account's key (operator) or its dashboard token (viewer) opens."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    if not isinstance(account, str) or not isinstance(key, (str, type(None))) or \
            not isinstance(token, (str, type(None))):
        raise SignInFailed()
    if key is not None and account in accounts:
        try:
            given = base64.b64decode(key.strip(), validate=True)
        except ValueError:
            given = b""
        if given and hmac.compare_digest(given, accounts[account]):
            return Session(account, "operator", expires)
    if token is not None and account in tokens and hmac.compare_digest(token.encode(), tokens[account].encode()):
        return Session(account, "viewer", expires, _fingerprint(account, tokens[account]))
    raise SignInFailed()


def _fingerprint(account: str, token: str) -> str:
    return hashlib.sha256(f"{account}\0{token}".encode()).hexdigest()[:24]


def encode(session: Session, secret: bytes) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(
        {"a": session.account, "r": session.role, "e": session.expires, "g": session.grant},
        separators=(",", ":")).encode()).decode()
    payload = payload.rstrip("=")   # (a cookie value without '=' is sent as it is, never quoted)
    return f"{payload}.{_mac(payload, secret)}"


def decode(value: str, secret: bytes, accounts: Mapping[str, bytes], tokens: Mapping[str, str],
           now: float | None = None) -> Session | None:
    """The session a cookie value holds, if its signature is right, it has not expired, its account still
    exists and (a viewer's) the token that opened it is still the account's; None otherwise."""
    if not value.isascii():   # (a header may carry any latin-1 character; compare_digest takes ASCII only)
        return None
    payload, _, mac = value.partition(".")
    if not mac or not hmac.compare_digest(mac, _mac(payload, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode() + b"=" * (-len(payload) % 4)))
        session = Session(str(data["a"]), data["r"], int(data["e"]), str(data.get("g", "")))
    except (ValueError, KeyError, TypeError):
        return None
    if session.role not in ("operator", "viewer") or session.account not in accounts:
        return None
    if session.role == "viewer" and (session.account not in tokens or not hmac.compare_digest(
            session.grant, _fingerprint(session.account, tokens[session.account]))):
        return None
    if session.expires <= (time.time() if now is None else now):
        return None
    return session


def _mac(payload: str, secret: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload.encode(), hashlib.sha256).digest()).decode().rstrip("=")
