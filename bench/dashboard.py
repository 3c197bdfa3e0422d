"""Dashboards left open while the figures run (``--dashboards N``): what the server pays for them.

Each one does what the dashboard's job page does in a browser, without the browser (whose rendering
would take the bench's CPU, not the server's): it signs in, holds the live feed (server-sent events)
open, and on every overview that changed reads what the job page shows: the newest jobs with their
progress, the newest job, its task counts and the first page of its tasks. Each runs in a process of
its own (``python -m bench.dashboard URL ACCOUNT KEY``), so that it does not take the GIL from the
bench's own clients.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


class DashboardProcess:
    """An :class:`OpenDashboard` in a child process; ``stop`` ends it and returns what it did."""

    def __init__(self, url: str, account: str, key: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.dashboard", url, account, key], cwd=REPO,
                                        stdout=subprocess.PIPE, text=True)

    def start(self) -> "DashboardProcess":
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "open":
            raise RuntimeError("the dashboard could not sign in")
        return self

    def stop(self) -> dict[str, int]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        return json.loads(out.strip().splitlines()[-1])

API_VERSION = "2024-07-01.20.0"
HEADERS = {"x-openbatch-dashboard": "1"}


class OpenDashboard:
    def __init__(self, url: str, account: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers=HEADERS, timeout=30)
        self.account, self.key = account, key
        self.stopped = threading.Event()
        self.events = 0
        self.reads = 0
        self.thread = threading.Thread(target=self._run, name="bench-dashboard", daemon=True)

    def start(self) -> "OpenDashboard":
        response = self.http.post("/ui/session", json={"account": self.account, "key": self.key})
        response.raise_for_status()
        self.thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self.stopped.set()
        self.http.close()
        self.thread.join(5)
        return {"events": self.events, "reads": self.reads}

    def _run(self) -> None:
        last = ""
        while not self.stopped.is_set():
            try:
                with self.http.stream("GET", "/ui/events", timeout=None) as stream:
                    for line in stream.iter_lines():
                        if self.stopped.is_set():
                            return
                        if not line.startswith("data: "):
                            continue
                        self.events += 1
                        overview = line[6:]
                        changed = overview.split('"rates"')[0] != last
                        last = overview.split('"rates"')[0]
                        if changed:
                            self._read_job_page()
            except (httpx.HTTPError, RuntimeError):
                if self.stopped.wait(0.5):
                    return

    def _get(self, path: str, **query: Any) -> Any:
        response = self.http.get(path, params={"api-version": API_VERSION, **query})
        self.reads += 1
        return response.json() if response.status_code == 200 else None

    def _read_job_page(self) -> None:
        jobs = self._get("/openbatch/jobprogress", maxresults=200)
        if not jobs or not jobs["value"]:
            return
        job = jobs["value"][0]["id"]
        self._get(f"/jobs/{job}")
        self._get(f"/jobs/{job}/taskcounts")
        self._get(f"/jobs/{job}/tasks", maxresults=100, **{"$select": "id,state,executionInfo,nodeInfo,creationTime,commandLine"})


def main(url: str, account: str, key: str) -> None:
    dashboard = OpenDashboard(url, account, key).start()
    print("open", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print(json.dumps(dashboard.stop()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
