"""Authentication tokens of tasks (authenticationTokenSettings, access ``job``).

A task that asks for one finds it in ``AZ_BATCH_AUTHENTICATION_TOKEN`` and sends it as
``Authorization: Bearer <token>``; it grants every operation on the task's own job (the job,
its tasks, their files, its counts) and nothing else, as Azure documents. The token is
stateless: ``ob1.<payload>.<signature>``, the payload naming the account, the job and the
expiry, signed with HMAC-SHA256 under the account key (so a new key ends every token). It
lives :data:`TOKEN_LIFETIME`; it is never stored, logged or returned by the API.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

from ..domain.errors import BatchError

TOKEN_LIFETIME = timedelta(days=7)
_VERSION = "ob1"


@dataclass(frozen=True, slots=True)
class TokenScope:
    account: str
    job_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.digest(key, f"{_VERSION}.{payload}".encode(), "sha256"))


def issue(account: str, key: bytes, job_id: str, now: datetime) -> str:
    expiry = int((now + TOKEN_LIFETIME).timestamp())
    payload = _b64(json.dumps({"a": account, "j": job_id, "e": expiry}, separators=(",", ":")).encode())
    return f"{_VERSION}.{payload}.{_signature(key, payload)}"


def _refused(detail: str) -> BatchError:
    return BatchError("AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of "
                      "Authorization header is formed correctly including the signature.",
                      [("AuthenticationErrorDetail", detail)])


def verify(token: str, keys: Mapping[str, bytes], now: datetime) -> TokenScope:
    """The scope of a valid token; 400 InvalidAuthenticationInfo for what is no token, 403
    AuthenticationFailed for one not signed here or expired."""
    try:
        version, payload, signature = token.strip().split(".")
        claims = json.loads(_unb64(payload))
        account, job_id, expiry = str(claims["a"]), str(claims["j"]), int(claims["e"])
    except (ValueError, KeyError, TypeError):
        raise BatchError("InvalidAuthenticationInfo", "The authentication information was not provided in the "
                         "correct format. Verify the value of Authorization header.",
                         [("AuthenticationErrorDetail", "The bearer token is not a task authentication token "
                                                        "of this server (ob1.<payload>.<signature>).")]) from None
    key = keys.get(account)
    if version != _VERSION or key is None or not hmac.compare_digest(signature, _signature(key, payload)):
        raise _refused("The bearer token is not a token of this server.")
    if now.astimezone(timezone.utc).timestamp() > expiry:
        raise _refused(f"The bearer token expired at {datetime.fromtimestamp(expiry, timezone.utc).isoformat()}.")
    return TokenScope(account, job_id)


def check_scope(scope: TokenScope, job_id: str | None) -> None:
    """403 unless the operation is on the token's own job."""
    if job_id is None or job_id.lower() != scope.job_id.lower():
        raise BatchError("InsufficientAccountPermissions", "The account being accessed does not have sufficient "
                         "permissions to execute this operation: a task's authentication token grants access to "
                         "its own job only.", [("TokenJobId", scope.job_id)])
