"""The ASGI application: read, authenticate, check the api-version, route, answer.

Every failure leaves as a BatchError body; an unexpected exception is logged and
answered 500 InternalError, never a bare traceback.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from .. import metrics
from ..auth import SignedRequest, task_tokens, verify
from ..domain import clock
from ..domain.errors import BatchError, invalid_query, not_implemented
from ..services import Services
from . import handlers  # noqa: F401  (registers the operations)
from ..services.overview import as_json
from . import ops
from .agent_api import PREFIX as AGENT_PREFIX
from .dashboard import CSRF_HEADER, PREFIX as DASHBOARD_PREFIX, Dashboard
from .live import LiveFeed
from .request import ApiRequest, parse_query
from .router import resolve
from .wire import error_response

log = logging.getLogger("openbatch.api")
#: One line per Batch API request answered (info): operation, status, duration, request id; never a key.
access_log = logging.getLogger("openbatch.access")

#: api-versions the current official clients send (JS 10.2 .. azure-batch 15.1).
API_VERSIONS = frozenset(
    {
        "2022-10-01.16.0",
        "2023-05-01.17.0",
        "2023-11-01.18.0",
        "2024-02-01.19.0",
        "2024-07-01.20.0",
        "2025-06-01",
    }
)

MAX_BODY_BYTES = 4 * 1024 * 1024


class BatchApp:
    """The API as an ASGI callable; ``services`` and ``accounts`` (name -> key bytes) are injected."""

    def __init__(
        self, services: Services, accounts: Mapping[str, bytes], now: Callable[[], datetime] = clock.utcnow,
        runtime: Any = None, lease: Any = None, timers: Any = None, metrics_token: str | None = None,
        dashboard_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.services = services
        self.accounts = dict(accounts)
        self.now = now
        #: The execution runtime (openbatch.runtime.Runtime), started and stopped with the server.
        self.runtime = runtime
        #: The server's lease on its database (openbatch.store.lease), released when it stops.
        self.lease = lease
        #: What the clock starts (openbatch.scheduler.timers.Timers): started after the runtime.
        self.timers = timers
        #: /health, /ready, /metrics (no account key).
        self.ops = ops.Operations(services, runtime, metrics_token)
        #: /ui/: the dashboard's files, sessions and live feed.
        self.feed = LiveFeed(lambda account: as_json(services.overview.overview(account)))
        self.dashboard = Dashboard(self.accounts, dashboard_tokens or {}, self.feed)

    def begin_shutdown(self) -> None:
        """The server stops: what waits for news (agents' long-polls) answers now, before the open
        connections are waited for."""
        if self.runtime is not None:
            self.runtime.hub.close()
        self.feed.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.runtime, self.lease, self.services.ctx.store, self.timers)
            return
        if scope["type"] != "http":
            return
        if scope["path"] in ops.PATHS and scope["method"] in ("GET", "HEAD"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            await (await self.ops.handle(scope["path"], headers))(scope, receive, send)
            return
        if scope["path"] == DASHBOARD_PREFIX or scope["path"].startswith(DASHBOARD_PREFIX + "/"):
            await self.dashboard(scope, receive, send)
            return
        if self.runtime is not None and scope["path"].startswith(AGENT_PREFIX):
            request = Request(scope, receive)
            response = await self.runtime.agent_api.handle(request, scope["path"][len(AGENT_PREFIX):])
            await response(scope, receive, send)
            return
        started = time.perf_counter()
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_query = scope.get("query_string", b"").decode("latin-1")
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        req = ApiRequest(
            method=scope["method"].upper(),
            path=raw_path,
            query=parse_query(raw_query),
            headers={k.lower(): v for k, v in pairs},
            body=b"",
            base_url=_base_url(scope, pairs),
            services=self.services,
        )
        try:
            req.body = await _read_body(receive)
            response = await self._handle(req, pairs, raw_query)
        except BatchError as error:
            response = error_response(req, error)
        except Exception:  # noqa: BLE001 - the one place that turns surprises into a 500 BatchError
            log.exception("unhandled error in %s %s", req.method, raw_path)
            response = error_response(req, BatchError("InternalError", "The server encountered an internal error."))
        if req.operation_id:  # routed: tests/support/live.py checks the response against this operation
            scope["openbatch.operation"] = req.operation_id
        await response(scope, receive, send)
        seconds = time.perf_counter() - started
        operation = req.operation_id or "unknown"
        metrics.request_answered(operation, response.status_code, seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("%s %s %s %d %.1f ms request-id=%s account=%s", req.method, raw_path, operation,
                            response.status_code, seconds * 1000, req.request_id, req.account or "-",
                            extra={"method": req.method, "path": raw_path, "operation": operation,
                                   "status": response.status_code, "duration_ms": round(seconds * 1000, 3),
                                   "request_id": req.request_id, "account": req.account or None})

    async def _handle(self, req: ApiRequest, headers: list[tuple[str, str]], raw_query: str) -> Any:
        authorization = req.headers.get("authorization", "")
        scope = None
        session = None if authorization else self.dashboard.session(req.headers)
        if session is not None:   # the dashboard, signed in (api/dashboard.py)
            if req.headers.get(CSRF_HEADER) != "1":
                raise BatchError("AuthenticationFailed", f"A dashboard session needs the {CSRF_HEADER} header.")
            if not session.may_change and req.method not in ("GET", "HEAD"):
                raise BatchError("InsufficientAccountPermissions", "This dashboard session may only read: sign "
                                 "in with the account key to act.")
            req.account = session.account
        elif authorization[:7].lower() == "bearer ":   # a task's authentication token (auth/task_tokens.py)
            scope = task_tokens.verify(authorization[7:], self.accounts, self.now())
            req.account = scope.account
        else:
            signed = SignedRequest(method=req.method, raw_path=req.path, raw_query=raw_query, headers=headers,
                                   body_length=len(req.body))
            req.account = verify(signed, self.accounts, self.now())
        req.token_key = self.accounts.get(req.account, b"")
        for name, value in req.query.items():
            if "\x00" in value:  # nothing takes a NUL, and PostgreSQL could not compare one
                raise invalid_query(name, value.replace("\x00", "%00"), "The value contains a NUL character.")
        version = req.query.get("api-version")
        if not version:
            raise BatchError("MissingRequiredQueryParameter", "A query parameter that's mandatory for this request is "
                             "not specified.", [("QueryParameterName", "api-version")])
        if version not in API_VERSIONS:
            raise BatchError("UnsupportedRequestVersion", "The specified api-version is not supported.",
                             [("RequestedVersion", version), ("SupportedVersions", ", ".join(sorted(API_VERSIONS)))])
        req.api_version = version
        operation_id, handler, params = resolve(req.method, req.path)
        req.operation_id = operation_id
        req.params = params
        if scope is not None:
            task_tokens.check_scope(scope, params.get("jobId"))
        if handler is None:  # before any other check: an unimplemented operation always answers 501
            raise not_implemented(operation_id)
        req.check_timeout()
        return await handler(req)


def _base_url(scope: Scope, headers: list[tuple[str, str]]) -> str:
    host = next((v for k, v in headers if k == "host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, straight from the ASGI messages; 413 past MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BatchError("RequestBodyTooLarge", "The request body is too large.",
                             [("MaxLimit", str(MAX_BODY_BYTES))])
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _lifespan(receive: Receive, send: Send, runtime: Any, lease: Any, store: Any, timers: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if runtime is not None:
                await runtime.start()
            if timers is not None:
                timers.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                if timers is not None:
                    await timers.stop()
                if runtime is not None:
                    await runtime.stop()
            finally:
                if lease is not None:
                    lease.release()
                if store.loop_reads is not None:
                    await store.loop_reads.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
