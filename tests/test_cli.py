"""`openbatch serve` as a user runs it: a real process, its printed account and key, the key file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from openbatch.auth.client import SharedKeyAuth
from openbatch.config import parse_accounts
from tests.support.live import free_port

SRC = str(Path(__file__).resolve().parent.parent / "src")


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "openbatch", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})},
    )
    banner: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline and len(banner) < 3:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.match(r"\s*(openbatch listening on|account:|key:)\s*(\S+)", line)
        if found:
            banner[found.group(1)] = found.group(2)
    return proc, banner


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_ready(url: str, account: str, key: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(f"{url}/jobs", params={"api-version": "2024-07-01.20.0"},
                             auth=SharedKeyAuth(account, key), timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_with_defaults_generates_and_keeps_a_key(tmp_path: Path) -> None:
    port = free_port()
    proc, banner = serve("--port", str(port), "--data-dir", str(tmp_path))
    try:
        url, account, key = banner["openbatch listening on"], banner["account:"], banner["key:"]
        assert url == f"http://127.0.0.1:{port}" and account == "openbatch"
        response = wait_ready(url, account, key)
        assert response.status_code == 200 and response.json()["value"] == []
        key_file = tmp_path / "account.key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (tmp_path / "openbatch.db").exists()
    finally:
        stop(proc)
    proc, banner = serve("--port", str(port), "--data-dir", str(tmp_path))
    try:
        assert banner["key:"] == key, "the key is generated once and kept"
    finally:
        stop(proc)


def test_serve_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    proc, banner = serve(env={"OPENBATCH_PORT": str(port), "OPENBATCH_DATA_DIR": str(tmp_path),
                              "OPENBATCH_ACCOUNT": "envaccount", "OPENBATCH_KEY": key})
    try:
        assert banner["account:"] == "envaccount" and banner["key:"] == key
        assert wait_ready(f"http://127.0.0.1:{port}", "envaccount", key).status_code == 200
        assert not (tmp_path / "account.key").exists()
    finally:
        stop(proc)


def test_account_lists() -> None:
    assert parse_accounts("a:Zm9v,b:YmFy") == {"a": "Zm9v", "b": "YmFy"}
    assert parse_accounts("") == {}
    with pytest.raises(SystemExit):
        parse_accounts("nokey")


def _pool_with_nodes(url: str, account: str, key: str, nodes: int) -> None:
    """A pool of ``nodes`` local nodes, idle (their agents then hold long-polls open to the server)."""
    auth = SharedKeyAuth(account, key)
    params = {"api-version": "2024-07-01.20.0"}
    created = httpx.post(f"{url}/pools", params=params, auth=auth, timeout=10, json={
        "id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": nodes,
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                           "sku": "22_04-lts"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 22.04"}})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while True:
        found = httpx.get(f"{url}/pools/p/nodes", params=params, auth=auth, timeout=10).json()["value"]
        if len(found) == nodes and all(node["state"] == "idle" for node in found):
            return
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def _watch_dashboard(url: str, account: str, key: str) -> threading.Thread:
    """A dashboard signed in and following the live feed, in a thread that ends with the feed."""
    http = httpx.Client(base_url=url, headers={"x-openbatch-dashboard": "1"}, timeout=30)
    assert http.post("/ui/session", json={"account": account, "key": key}).status_code == 200
    opened = threading.Event()

    def follow() -> None:
        with http.stream("GET", "/ui/events") as stream:
            for _ in stream.iter_lines():
                opened.set()
        http.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert opened.wait(10)
    return thread


def test_a_signal_stops_a_server_with_nodes_at_once_and_quietly(tmp_path: Path) -> None:
    """SIGTERM (and SIGINT) stop the server with its agents: the agents' long-polls and the dashboards'
    live feeds end at once instead of holding up the shutdown (it waited for them 2 s and cancelled them
    with an error); no traceback, exit status 0."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, banner = serve("--port", str(free_port()), "--data-dir", str(tmp_path / sig.name))
        url, account, key = banner["openbatch listening on"], banner["account:"], banner["key:"]
        _pool_with_nodes(url, account, key, 2)
        dashboard = _watch_dashboard(url, account, key)
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        finally:
            proc.kill()
        took = time.monotonic() - started
        output = proc.stdout.read() if proc.stdout else ""
        print(f"{sig.name}: stopped in {took:.2f} s")
        assert proc.returncode == 0, output
        assert "Traceback" not in output and "ERROR" not in output and "graceful shutdown exceeded" not in output, \
            output
        assert "openbatch.server: stopping" in output
        assert "WARNING" not in output, output   # (the agents knew the server was stopping)
        dashboard.join(5)
        assert not dashboard.is_alive(), "the live feed ended with the server"


def test_a_port_in_use_ends_serve_at_once_saying_so_with_nothing_started(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "openbatch", "serve", "--port", str(port), "--data-dir",
                               str(tmp_path)], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == 1
    assert f"openbatch: cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "listening on" not in proc.stdout
    assert not (tmp_path / "openbatch.db").exists(), "the database is not touched"


def test_json_logs_one_object_a_line_with_an_access_log_that_holds_no_secret(tmp_path: Path) -> None:
    proc, banner = serve("--port", str(free_port()), "--data-dir", str(tmp_path), "--log-format", "json",
                         "--access-log")
    url, account, key = banner["openbatch listening on"], banner["account:"], banner["key:"]
    try:
        assert wait_ready(url, account, key).status_code == 200
        missing = httpx.get(f"{url}/jobs/nope", params={"api-version": "2024-07-01.20.0"},
                            auth=SharedKeyAuth(account, key), timeout=10)
        assert missing.status_code == 404
    finally:
        stop(proc)
    output = proc.stdout.read() if proc.stdout else ""
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "openbatch.access"]
    found = next(r for r in access if r["operation"] == "Job_Get")
    assert found["status"] == 404 and found["method"] == "GET" and found["path"] == "/jobs/nope"
    assert found["request_id"] == missing.headers["request-id"] and found["account"] == account
    assert found["level"] == "info" and found["duration_ms"] >= 0
    assert any(r["operation"] == "Job_List" and r["status"] == 200 for r in access)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    log_lines = [line for line in output.splitlines() if line.startswith("{")]
    assert not any(key in line or "SharedKey" in line for line in log_lines)


def test_prefetch_is_on_unless_turned_off_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from openbatch.cli import parser

    monkeypatch.delenv("OPENBATCH_PREFETCH", raising=False)
    assert parser().parse_args(["serve"]).prefetch is True
    assert parser().parse_args(["serve", "--no-prefetch"]).prefetch is False
    monkeypatch.setenv("OPENBATCH_PREFETCH", "0")
    assert parser().parse_args(["serve"]).prefetch is False
    assert parser().parse_args(["serve", "--prefetch"]).prefetch is True
