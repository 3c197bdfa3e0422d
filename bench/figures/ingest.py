"""Figure 3, ingest: N tasks through AddTaskCollection (100 a call) from 4 concurrent clients.

The job's pool has no nodes, so nothing runs: this is the add path alone. Bodies are
encoded before the clock starts; each client (a thread with its own keep-alive
connection) takes the next body until none are left. Afterwards Get Task Counts must
say N active.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass

from ..measure import Deadline
from ..results import Row, at_least
from ..server import CLIENT_NAME, Server, collection_bodies
from ..suite import Suite

KEY = "ingest"
TITLE = "3 ingest"
NEEDS: tuple[str, ...] = ()
CLIENTS = 4


@dataclass
class Ingest:
    added: int
    elapsed: float
    failures: list[str]


def add_concurrently(suite: Suite, servers: list[Server], job_id: str, bodies: list[bytes], tasks: int,
                     deadline: Deadline, clients: int = CLIENTS) -> Ingest:
    """Add ``bodies`` (AddTaskCollection, ``tasks`` in all) to ``job_id`` from ``clients`` threads, each with its own
    keep-alive connection to ``servers[i % len(servers)]``, each taking the next body until none are
    left (or the deadline passed, or one failed)."""
    order = itertools.count()
    added = [0] * clients
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        with servers[index % len(servers)].client() as client:
            try:
                while not deadline.passed() and not failures:
                    with lock:
                        i = next(order)
                    if i >= len(bodies):
                        return
                    added[index] += client.add_collection(job_id, bodies[i])
            except Exception as exc:  # noqa: BLE001 - reported in the row
                failures.append(str(exc))

    where = "" if len(servers) == 1 else f" on {len(servers)} servers"
    with suite.step(f"adding {tasks:,} tasks, {clients} clients{where}", total=tasks) as step:
        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            step.update(sum(added))
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
    return Ingest(sum(added), elapsed, failures)


def run(suite: Suite) -> list[Row]:
    n = suite.size(100_000, 10_000)
    bodies = collection_bodies(n)
    deadline = Deadline(suite.budget(120, 30))
    with suite.server(KEY) as server:
        with server.client() as setup:
            setup.add_pool("empty", nodes=0)
            setup.add_job("ingjob", "empty")
        done = add_concurrently(suite, [server], "ingjob", bodies, n, deadline)
        with server.client() as check:
            active = check.task_counts("ingjob")["active"]
    total, elapsed, failures = done.added, done.elapsed, done.failures
    partial = total < n
    note = f"{total:,} tasks in {elapsed:.1f}s; task counts say {active:,} active"
    if active != total:
        note += " (MISMATCH)"
    if failures:
        note += f"; failed: {failures[0][:200]}"
    elif partial:
        note += f" (time budget {deadline.seconds:.0f}s spent)"
    return [Row(TITLE, f"{n:,} tasks, 100/call, {CLIENTS} clients, pool without nodes", total / elapsed,
                "tasks/s", at_least(25_000), CLIENT_NAME, note, partial=partial)]
