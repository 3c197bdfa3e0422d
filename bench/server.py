"""Start and stop an openbatch server for the bench, and the lean client that talks to it.

The server runs as ``python -m openbatch serve`` in a subprocess on a free loopback
port with its own data directory (and, for PostgreSQL, its own fresh database).
The client is httpx with :class:`openbatch.auth.client.SharedKeyAuth`: every request
is signed with Shared Key like the official SDKs sign them, nothing else is added.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgspec

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:  # the bench uses openbatch's own signer and schema
    sys.path.insert(0, str(SRC))

from openbatch.auth.client import SharedKeyAuth  # noqa: E402

API_VERSION = "2024-07-01.20.0"
ACCOUNT = "bench"
JSON_TYPE = "application/json; odata=minimalmetadata"
#: Short name in the table; the legend under it says what it is.
CLIENT_NAME = "httpx"
CLIENT_LEGEND = ("httpx = httpx 0.28 with openbatch.auth.client.SharedKeyAuth, HTTP/1.1 keep-alive, "
                 "one connection per client")
_encode = msgspec.json.Encoder().encode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class ApiError(RuntimeError):
    pass


class Client:
    """A lean Batch client: one keep-alive HTTP/1.1 connection pool, Shared Key signed."""

    def __init__(self, url: str, account: str, key: str, timeout: float = 60.0) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            auth=SharedKeyAuth(account, key),
            timeout=timeout,
            headers={"user-agent": "openbatch-bench"},
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # (No client-wide params: httpx 0.28 would replace a nextLink's own query with them.)

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.get(path, params={"api-version": API_VERSION, **(params or {})})

    def get_url(self, url: str) -> httpx.Response:
        """GET an absolute URL as given (an ``odata.nextLink``, which carries its own api-version)."""
        return self.http.get(url)

    def post(self, path: str, body: bytes | dict[str, Any]) -> httpx.Response:
        content = body if isinstance(body, bytes) else _encode(body)
        return self.http.post(path, content=content, params={"api-version": API_VERSION},
                              headers={"content-type": JSON_TYPE})

    def delete(self, path: str) -> httpx.Response:
        return self.ok(self.http.delete(path, params={"api-version": API_VERSION}))

    def ok(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise ApiError(f"{response.request.method} {response.request.url.path} -> "
                           f"{response.status_code}: {response.text[:400]}")
        return response

    # -- the few operations the figures need ------------------------------------------------

    def add_pool(self, pool_id: str, nodes: int, slots: int = 1) -> None:
        self.ok(self.post("/pools", {
            "id": pool_id,
            "vmSize": "standard_d2s_v3",
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                                   "sku": "22_04-lts"},
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            },
            "targetDedicatedNodes": nodes,
            "taskSlotsPerNode": slots,
        }))

    def node_states(self, pool_id: str) -> dict[str, int]:
        states: dict[str, int] = {}
        url: str | None = None
        for _ in range(10_000):  # bounded: 10M nodes at 1,000 a page
            response = self.ok(self.get_url(url) if url else self.get(f"/pools/{pool_id}/nodes",
                                                                      {"$select": "id,state"}))
            page = response.json()
            for node in page.get("value", []):
                states[node["state"]] = states.get(node["state"], 0) + 1
            url = page.get("odata.nextLink")
            if not url:
                break
        return states

    def wait_nodes_idle(self, pool_id: str, count: int, timeout: float) -> float:
        """Seconds until ``count`` nodes of the pool are idle; raises after ``timeout``."""
        start = time.monotonic()
        states: dict[str, int] = {}
        while time.monotonic() - start < timeout:
            states = self.node_states(pool_id)
            if states.get("idle", 0) >= count:
                return time.monotonic() - start
            time.sleep(0.2)
        raise ApiError(f"pool {pool_id}: {count} idle nodes not reached in {timeout:.0f}s (states {states})")

    def add_job(self, job_id: str, pool_id: str, **extra: Any) -> None:
        self.ok(self.post("/jobs", {"id": job_id, "poolInfo": {"poolId": pool_id}, **extra}))

    def task_counts(self, job_id: str) -> dict[str, int]:
        return dict(self.ok(self.get(f"/jobs/{job_id}/taskcounts")).json()["taskCounts"])

    def add_collection(self, job_id: str, body: bytes) -> int:
        """POST one AddTaskCollection body; returns how many tasks were added successfully."""
        values = self.ok(self.post(f"/jobs/{job_id}/addtaskcollection", body)).json()["value"]
        return sum(1 for v in values if v.get("status") == "success")


def collection_bodies(count: int, per_call: int = 100, command: str = "/bin/true",
                      prefix: str = "t") -> list[bytes]:
    """Pre-encoded AddTaskCollection bodies for ``count`` tasks (encoded before any timing starts)."""
    bodies = []
    for start in range(0, count, per_call):
        values = [{"id": f"{prefix}{i:07d}", "commandLine": command}
                  for i in range(start, min(count, start + per_call))]
        bodies.append(_encode({"value": values}))
    return bodies


@dataclass
class Server:
    """A running ``openbatch serve`` subprocess."""

    url: str
    account: str
    key: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, timeout: float = 60.0) -> Client:
        return Client(self.url, self.account, self.key, timeout)

    def rss(self) -> int:
        """The server process's resident set size in bytes (agents are separate processes)."""
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the server process, and its agents with the task processes they reaped."""
        import psutil

        def used(times: Any, children: bool) -> float:
            total = times.user + times.system
            return total + (times.children_user + times.children_system if children else 0.0)

        try:
            server = psutil.Process(self.pid)
            agents = server.children(recursive=False)
            agent_cpu = 0.0
            for agent in agents:
                try:
                    agent_cpu += used(agent.cpu_times(), True)
                except psutil.Error:
                    pass
            return {"server": used(server.cpu_times(), False), "agents": agent_cpu,
                    "agent_processes": len(agents)}
        except psutil.Error:
            return {}

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with server.client(timeout=5) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"the server exited ({server.process.returncode}):\n{server.log_tail()}")
            try:
                if client.get("/pools").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {timeout:.0f}s:\n{server.log_tail()}")


def _stop(server: Server) -> None:
    import psutil

    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    # Agents the server started (and their task processes) must not outlive the run.
    for child in children:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                child.kill()
        except psutil.Error:
            pass


@contextmanager
def start_server(database_url: str | None, *, nodes_per_agent: int | None = None,
                 node_provider: str = "local", timeout: float = 60.0,
                 profile: Path | None = None, data_root: Path | None = None,
                 key: str | None = None, extra_args: list[str] | None = None) -> Iterator[Server]:
    """A fresh server (own port, own data dir); stopped with SIGINT (it stops its agents) on exit.
    Servers given the same ``database_url`` and ``key`` serve the same account together.

    With ``profile`` the server runs under :mod:`bench.sampler`, which writes its samples there.
    ``extra_args`` go to ``openbatch serve`` as given (``--server-arg``: ``--no-prefetch``, say).
    """
    data_dir = Path(tempfile.mkdtemp(prefix="openbatch-bench-", dir=data_root))
    data_dir.chmod(0o755)   # tasks run as their own accounts and must pass through (mkdtemp makes it 0700)
    port = free_port()
    key = key or new_key()
    db_url = database_url or f"sqlite:///{data_dir / 'openbatch.db'}"
    entry = ["bench.sampler"] if profile else ["openbatch"]
    args = [sys.executable, "-m", *entry, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--key", key, "--account", ACCOUNT, "--database-url", db_url,
            "--node-provider", node_provider]
    if nodes_per_agent:
        args += ["--nodes-per-agent", str(nodes_per_agent)]
    args += extra_args or []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBATCH_")}
    paths = [str(SRC), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if profile:
        env["OPENBATCH_BENCH_PROFILE"] = str(profile)
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=str(data_dir))
    server = Server(f"http://127.0.0.1:{port}", ACCOUNT, key, db_url, data_dir, process, log_path,
                    {"nodes_per_agent": nodes_per_agent})
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        _stop(server)
        shutil.rmtree(data_dir, ignore_errors=True)
