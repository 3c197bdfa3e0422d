"""README.md's examples, as a reader would run them against a fresh ``openbatch serve``.

The examples name the default endpoint (http://127.0.0.1:8080) and the key as ``<key>``; a test runs them
against its own server (a free port, a fresh data directory) with those two swapped in, and nothing else
changed. Blocks are found by the heading above them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SRC = str(ROOT / "src")
ENDPOINT = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Block:
    heading: str
    language: str
    code: str
    line: int


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of README.md with the heading it is under."""
    found: list[Block] = []
    heading = ""
    lines = (text if text is not None else README.read_text()).splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            found.append(Block(heading, fence.group(1), "\n".join(lines[index + 1:end]), index + 1))
            index = end
        index += 1
    return found


def under(heading: str, language: str) -> list[Block]:
    chosen = [b for b in blocks() if b.heading == heading and b.language == language]
    assert chosen, f"README.md has no {language} block under '{heading}'"
    return chosen


@dataclass
class FreshServer:
    """``openbatch serve`` with its embedded defaults, on a free port and a fresh data directory."""

    url: str
    key: str
    data_dir: Path
    process: subprocess.Popen

    @classmethod
    def start(cls, data_dir: Path, port: int) -> "FreshServer":
        process = subprocess.Popen(
            [sys.executable, "-m", "openbatch", "serve", "--port", str(port), "--data-dir", str(data_dir),
             "--no-access-log"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**cls.environment(), "PYTHONPATH": SRC})
        key = None
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while key is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.match(r"\s*key:\s*(\S+)", line)
            key = found.group(1) if found else None
        if key is None:
            process.kill()
            raise RuntimeError("openbatch serve did not start")
        return cls(f"http://127.0.0.1:{port}", key, data_dir, process)

    @staticmethod
    def environment() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("OPENBATCH_")}

    def as_written(self, code: str) -> str:
        """The example with this server's endpoint and key in place of the README's."""
        return (code.replace(ENDPOINT, self.url).replace("http://batch-server:8080", self.url)
                .replace("localhost:8080", self.url.removeprefix("http://")).replace("<key>", self.key))

    def run(self, argv: list[str], timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
        env = {**self.environment(), "PYTHONPATH": SRC, "OPENBATCH_SERVER": self.url,
               "OPENBATCH_DATA_DIR": str(self.data_dir), **extra_env}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])   # `openbatch`
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.data_dir)

    def shell(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run(["bash", "-euo", "pipefail", "-c", self.as_written(code)], timeout)

    def python(self, code: str, python: str = sys.executable, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run([python, "-c", self.as_written(code)], timeout)

    def wait_idle_nodes(self, pool_id: str, count: int, timeout: float = 60) -> None:
        from openbatch.auth.client import SharedKeyAuth

        deadline = time.monotonic() + timeout
        while True:
            nodes = httpx.get(f"{self.url}/pools/{pool_id}/nodes", params={"api-version": "2024-07-01.20.0"},
                              auth=SharedKeyAuth("openbatch", self.key), timeout=10).json().get("value", [])
            if len([n for n in nodes if n["state"] == "idle"]) >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} idle nodes in {pool_id}: {nodes}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
