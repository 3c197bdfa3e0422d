"""`openbatch serve` as a user runs it: a real process, its printed account and key, the key file."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
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
