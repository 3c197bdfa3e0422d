"""The dashboard's edge: its static files under /ui/, signing in and out, and its live feed.

The dashboard is a client of the Batch API itself (every view reads, and every action calls, the
documented operations), authenticated by the session cookie instead of a Shared Key signature
(api/app.py accepts either). What the API lacks it reads from openbatch's own operations
(/openbatch/overview, /openbatch/jobprogress). Live updates come over server-sent events: one overview
per account and tick, read once however many dashboards watch (api/live.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from starlette.requests import Request, cookie_parser
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from ..auth import sessions
from .live import LiveFeed

log = logging.getLogger("openbatch.dashboard")

PREFIX = "/ui"
STATIC = Path(__file__).resolve().parent.parent / "ui"
#: Every cookie-authenticated call carries this header: a page of another origin cannot send it
#: without a CORS preflight (never granted), so it cannot act with the user's session.
CSRF_HEADER = "x-openbatch-dashboard"
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


#: A sign-in's body: an account name and a key or token.
MAX_SIGN_IN_BYTES = 16 * 1024


class _TooLarge(Exception):
    pass


async def _small_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SIGN_IN_BYTES:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class Dashboard:
    def __init__(self, accounts: Mapping[str, bytes], tokens: Mapping[str, str], feed: LiveFeed) -> None:
        self.accounts = accounts
        self.tokens = dict(tokens)
        self.secret = sessions.session_secret(accounts)
        self.feed = feed
        self.files = StaticFiles(directory=STATIC, html=True)

    def session(self, headers: Mapping[str, str]) -> sessions.Session | None:
        """The session of a request's cookie (None: none, or not valid any more)."""
        value = cookie_parser(headers.get("cookie", "")).get(sessions.COOKIE)
        return sessions.decode(value, self.secret, self.accounts, self.tokens) if value else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"][len(PREFIX):]
        request = Request(scope, receive)
        if path == "":
            response: Response = RedirectResponse(f"{PREFIX}/", 308)
        elif path == "/session":
            response = await self._session(request)
            response.headers["cache-control"] = "no-store"
        elif path == "/events":
            response = self._events(request)
        else:
            await self._static(scope, receive, send)
            return
        await response(scope, receive, send)

    async def _static(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (name.encode(), value.encode()) for name, value in _SECURITY_HEADERS.items()]
            await send(message)

        inner = dict(scope, path=scope["path"][len(PREFIX):] or "/", root_path="")
        try:
            await self.files(inner, receive, with_headers)
        except HTTPException as refused:   # (StaticFiles raises 404 and 405 for an app's middleware to answer)
            await PlainTextResponse(refused.detail, refused.status_code)(scope, receive, send)

    async def _session(self, request: Request) -> Response:
        if request.method == "GET":
            session = self.session(request.headers)
            if session is None:
                return JSONResponse({"error": "not signed in"}, 401)
            return JSONResponse({"account": session.account, "role": session.role})
        if request.headers.get(CSRF_HEADER) != "1":
            return JSONResponse({"error": f"the {CSRF_HEADER} header is required"}, 403)
        if request.method == "DELETE":
            response = JSONResponse({"signedOut": True})
            response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
            return response
        if request.method != "POST":
            return JSONResponse({"error": "use GET, POST or DELETE"}, 405)
        try:
            body = json.loads(await _small_body(request) or b"{}")
            session = sessions.sign_in(self.accounts, self.tokens, body["account"], key=body.get("key"),
                                       token=body.get("token"))
        except _TooLarge:
            return JSONResponse({"error": f"a sign-in is at most {MAX_SIGN_IN_BYTES} bytes"}, 413)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, sessions.SignInFailed):
            log.info("a dashboard sign-in failed")
            return JSONResponse({"error": "the account name, key or token is not right"}, 401)
        log.info("dashboard: %s signed in as %s", session.account, session.role)
        response = JSONResponse({"account": session.account, "role": session.role})
        response.set_cookie(sessions.COOKIE, sessions.encode(session, self.secret), max_age=sessions.SESSION_SECONDS,
                            path="/", httponly=True, samesite="strict")
        return response

    def _events(self, request: Request) -> Response:
        session = self.session(request.headers)
        if session is None:
            return JSONResponse({"error": "not signed in"}, 401)
        return StreamingResponse(self.feed.stream(session.account, until=session.expires), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
