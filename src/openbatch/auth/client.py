"""An ``httpx.Auth`` that signs requests with Shared Key, for our own test/bench clients."""

from __future__ import annotations

from email.utils import formatdate
from typing import Generator

import httpx

from openbatch.auth.shared_key import sign


class SharedKeyAuth(httpx.Auth):
    """Adds ``ocp-date`` (if missing) and a Shared Key ``Authorization`` header."""

    def __init__(self, account: str, key_b64: str) -> None:
        self.account = account
        self.key_b64 = key_b64

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not request.headers.get("ocp-date"):
            request.headers["ocp-date"] = formatdate(usegmt=True)
        request.headers["Authorization"] = sign(
            request.method, str(request.url), request.headers, self.account, self.key_b64
        )
        yield request
