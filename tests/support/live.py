"""A live openbatch server on a free loopback port, for end-to-end tests through real clients.

The app is wrapped so that every response is validated against the Swagger
definitions (strict: misspelled property names count) and every operation a
client reaches is recorded with the client that reached it (for docs/coverage.md).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from openbatch.config import Settings
from openbatch.server import Server, build

from .swagger import Spec

ACCOUNT = "testaccount"
KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_ACCOUNT = "otheraccount"
OTHER_KEY = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
#: The read-only dashboard sign-in of ACCOUNT on the servers with nodes.
DASHBOARD_TOKEN = "look-but-do-not-touch"


def client_of(user_agent: str) -> str:
    if "AZURECLI/" in user_agent:   # (the CLI drives azure-batch 14: it says both)
        return "az CLI"
    if "azsdk-python-batch/15" in user_agent:
        return "azure-batch 15"
    if "azure-batch/14" in user_agent:
        return "azure-batch 14"
    if "@azure/batch" in user_agent:
        return "@azure/batch"
    return "raw REST"


@dataclass
class Recorder:
    """What the server answered: contract violations and (operation, client, status) hits."""

    spec: Spec | None
    violations: list[str] = field(default_factory=list)
    hits: set[tuple[str, str, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, scope: dict, status: int, headers: dict[str, str], body: bytes) -> None:
        operation_id = scope.get("openbatch.operation")
        user_agent = headers.get("__user_agent", "")
        with self.lock:
            if operation_id:
                self.hits.add((operation_id, client_of(user_agent), status))
        if self.spec is None or operation_id is None:
            return
        try:
            op = self.spec.operation(operation_id)
        except KeyError:
            return
        content_type = headers.get("content-type", "")
        payload: Any = None
        if body and "json" in content_type:
            payload = json.loads(body)
        elif body:
            payload = body
        problems = self.spec.validate_response(op, status, payload, strict=True)
        if "request-id" not in headers:
            problems.append("missing request-id header")
        if problems:
            with self.lock:
                self.violations.append(f"{scope['method']} {scope['path']} -> {status} ({operation_id}): {problems}")


class RecordingApp:
    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user_agent = next((v.decode() for k, v in scope["headers"] if k == b"user-agent"), "")
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update({k.decode().lower(): v.decode() for k, v in message.get("headers", [])})
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        headers["__user_agent"] = user_agent
        self.recorder.record(scope, status, headers, b"".join(chunks))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    account: str
    key: str
    store_name: str
    recorder: Recorder
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def services(self) -> Any:
        return self.app.services

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(data_dir: Path, database_url: str | None, store_name: str, spec: Spec | None,
                 *, node_provider: str = "none", port: int | None = None, host: str = "127.0.0.1",
                 **options: Any) -> LiveServer:
    """A server on a free port; ``node_provider="local"`` gives pools real nodes (agent processes);
    ``host``: the address it listens on (and its URL names)."""
    port = port or free_port()
    # the session's servers are shared by hundreds of tests: quotas as large as the tests need
    options.setdefault("quota_pools", 10_000)
    options.setdefault("quota_active_jobs", 100_000)
    settings = Settings(
        port=port,
        data_dir=data_dir,
        account=ACCOUNT,
        key=KEY,
        database_url=database_url,
        extra_accounts={OTHER_ACCOUNT: OTHER_KEY},
        node_provider=node_provider,
        host=host,
        **options,
    )
    app, _store = build(settings)
    recorder = Recorder(spec)
    config = uvicorn.Config(RecordingApp(app, recorder), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    server = Server(config, app, announce=lambda: None)
    thread = threading.Thread(target=server.run, name=f"openbatch-{store_name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return LiveServer(f"http://{host}:{port}", ACCOUNT, KEY, store_name, recorder, app, server, thread)
