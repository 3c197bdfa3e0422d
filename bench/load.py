"""A lean closed-loop load generator for one GET: raw HTTP/1.1 keep-alive sockets, Shared Key signed.

Each of ``processes`` worker processes (spawned, so they share no GIL with the bench)
keeps ``connections`` sockets to the server, one thread each, and sends the next
request as soon as the previous answer is read. The request bytes are signed with
``openbatch.auth.shared_key.sign`` (what azure-batch 15 computes) and reused while the
``ocp-date`` second is the same, so the client spends microseconds per request and
the server is what is measured. Workers warm up until a common start time, then
count and time every request for ``seconds``.
"""

from __future__ import annotations

import multiprocessing
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

CLIENT_NAME = "raw"
CLIENT_LEGEND = ("raw = bench.load: closed-loop raw HTTP/1.1 keep-alive sockets in spawned processes, "
                 "Shared Key signed by openbatch.auth.shared_key.sign (request re-signed each second)")
WARMUP = 1.5


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""
    last_body: bytes = b""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class _Signed:
    """The request bytes for one GET, re-signed when the second changes."""

    def __init__(self, host: str, port: int, path: str, account: str, key: str) -> None:
        self.host, self.port, self.path, self.account, self.key = host, port, path, account, key
        self._date = ""
        self._bytes = b""

    def get(self) -> bytes:
        from openbatch.auth.shared_key import sign

        date = formatdate(usegmt=True)
        if date != self._date:
            headers = {"ocp-date": date}
            url = f"http://{self.host}:{self.port}{self.path}"
            auth = sign("GET", url, headers, self.account, self.key)
            self._bytes = (f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                           f"ocp-date: {date}\r\nAuthorization: {auth}\r\n"
                           "User-Agent: openbatch-bench-load\r\n\r\n").encode()
            self._date = date
        return self._bytes


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    buffer[:] = body[length:]
    return status, bytes(body[:length])


def _connection(signed: _Signed, start_at: float, stop_at: float, out: LoadResult,
                lock: threading.Lock) -> None:
    local = LoadResult()
    buffer = bytearray()
    with socket.create_connection((signed.host, signed.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(100_000_000):  # bounded; the clock ends it
            now = time.time()
            if now >= stop_at:
                break
            began = time.perf_counter()
            sock.sendall(signed.get())
            status, body = _read_response(sock, buffer)
            took = (time.perf_counter() - began) * 1000.0
            if now < start_at:
                continue
            local.requests += 1
            local.latencies_ms.append(took)
            local.last_body = body
            if status != 200:
                local.errors += 1
                local.first_error = local.first_error or f"{status}: {body[:200]!r}"
    with lock:
        out.requests += local.requests
        out.errors += local.errors
        out.latencies_ms += local.latencies_ms
        out.last_body = local.last_body or out.last_body
        out.first_error = out.first_error or local.first_error


def _worker(args: tuple[str, int, str, str, str, int, float, float]) -> dict[str, Any]:
    host, port, path, account, key, connections, start_at, stop_at = args
    out = LoadResult()
    lock = threading.Lock()
    signed = _Signed(host, port, path, account, key)
    threads = [threading.Thread(target=_connection, args=(signed, start_at, stop_at, out, lock), daemon=True)
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=stop_at - time.time() + 60)
    return {"requests": out.requests, "errors": out.errors, "latencies": out.latencies_ms,
            "first_error": out.first_error, "last_body": out.last_body}


def hammer(url: str | list[str], path: str, account: str, key: str, seconds: float, processes: int = 2,
           connections: int = 4) -> LoadResult:
    """GET ``path`` (with its query) from ``processes`` x ``connections`` closed-loop clients (process
    i on ``url[i % len(url)]`` when several servers are given)."""
    urls = [url] if isinstance(url, str) else url
    start_at = time.time() + WARMUP + 0.5 * processes  # spawned interpreters need a moment
    stop_at = start_at + seconds
    jobs = []
    for i in range(processes):
        host, port = urls[i % len(urls)].removeprefix("http://").split(":")
        jobs.append((host, int(port), path, account, key, connections, start_at, stop_at))
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        parts = pool.map(_worker, jobs)
    result = LoadResult(seconds=seconds)
    for part in parts:
        result.requests += part["requests"]
        result.errors += part["errors"]
        result.latencies_ms += part["latencies"]
        result.first_error = result.first_error or part["first_error"]
        result.last_body = part["last_body"] or result.last_body
    return result
