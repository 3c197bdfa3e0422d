"""Figure 2, scheduling latency on an idle pool (2 nodes x 4 slots), one task at a time.

Each sample: Task Add of one ``/bin/true`` task, then Get Task polled back to back
(no sleep) until the API reports it running (state running, or already completed:
the first answer past ``active``/``preparing``) and until it reports it completed.
A fast task can finish between two polls, so "to running" is an upper bound; the
server's own ``executionInfo.startTime`` minus the client's wall clock at the add is
reported beside it.
"""

from __future__ import annotations

import time
from datetime import datetime

from ..measure import Deadline, ms, percentile
from ..results import Row, at_most
from ..server import CLIENT_NAME, Client
from ..suite import Suite

KEY = "latency"
TITLE = "2 scheduling latency"
NEEDS: tuple[str, ...] = ()
SAMPLE_TIMEOUT = 10.0


def _sample(client: Client, task_id: str) -> tuple[float, float, float | None, float]:
    """(to running, to completed, server startTime - add, the Task Add call) in seconds for one task."""
    wall = time.time()
    start = time.perf_counter()
    client.ok(client.post("/jobs/latjob/tasks", {"id": task_id, "commandLine": "/bin/true"}))
    added = time.perf_counter() - start
    running: float | None = None
    params = {"$select": "state,executionInfo"}
    while time.perf_counter() - start < SAMPLE_TIMEOUT:
        body = client.ok(client.get(f"/jobs/latjob/tasks/{task_id}", params)).json()
        now = time.perf_counter() - start
        if running is None and body["state"] in ("running", "completed"):
            running = now
        if body["state"] == "completed":
            stamp = body.get("executionInfo", {}).get("startTime")
            stamped = None
            if stamp:
                stamped = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - wall
            return running, now, stamped, added
    raise TimeoutError(f"task {task_id} did not complete within {SAMPLE_TIMEOUT:.0f}s")


def run(suite: Suite) -> list[Row]:
    samples = suite.size(1_000, 100)
    to_running: list[float] = []
    to_completed: list[float] = []
    stamped: list[float] = []
    adds: list[float] = []
    deadline = Deadline(suite.budget(120, 30))
    with suite.server(KEY) as server, server.client() as client:
        client.add_pool("lat", nodes=2, slots=4)
        with suite.step("waiting for 2 idle nodes"):
            client.wait_nodes_idle("lat", 2, timeout=60)
        client.add_job("latjob", "lat")
        for i in range(3):  # warm up connections and code paths
            _sample(client, f"warm{i}")
        with suite.step(f"{samples:,} single-task samples", total=samples) as step:
            for i in range(samples):
                running, completed, start_stamp, added = _sample(client, f"s{i:05d}")
                to_running.append(ms(running))
                adds.append(ms(added))
                to_completed.append(ms(completed))
                if start_stamp is not None:
                    stamped.append(ms(start_stamp))
                step.advance()
                if deadline.passed():
                    break
    done = len(to_running)
    partial = done < samples
    note = f"{done:,} samples" + (f" (time budget {deadline.seconds:.0f}s spent)" if partial else "")
    server_side = (f"; server startTime − add: p50 {percentile(stamped, 50):.1f} ms, "
                   f"p99 {percentile(stamped, 99):.1f} ms") if stamped else ""
    # (to running is mostly the Task Add and one Get Task: the add places the task and says running)
    add_call = f"; the Task Add call alone: p50 {percentile(adds, 50):.1f} ms" if adds else ""
    return [
        Row(TITLE, "add → running, p50", percentile(to_running, 50), "ms", at_most(5), CLIENT_NAME,
            note + server_side + add_call, partial=partial),
        Row(TITLE, "add → running, p99", percentile(to_running, 99), "ms", at_most(20), CLIENT_NAME, note,
            partial=partial),
        Row(TITLE, "add → completed, p50", percentile(to_completed, 50), "ms", at_most(30), CLIENT_NAME,
            f"p99 {percentile(to_completed, 99):.1f} ms", partial=partial),
    ]
