"""Figure 1, end-to-end throughput: N ``/bin/true`` tasks through a pool of 2 nodes x 4 slots.

From the first AddTaskCollection call (100 tasks each, one client adding back to back)
until Get Task Counts says all N completed (polled every 50 ms by a second client).
The raw fork/exec floor and the optional peers run just before, on the same N.
"""

from __future__ import annotations

from .. import cpu_split, peers
from ..results import Peer, Row, at_least
from ..server import CLIENT_NAME, collection_bodies
from ..suite import Suite
from .runs import run_job

KEY = "throughput"
TITLE = "1 end-to-end throughput"
NEEDS: tuple[str, ...] = ()
TARGET_PER_SECOND = 600.0
TARGET_OF_FLOOR = 60.0


def _peers(suite: Suite, n: int) -> list[Peer]:
    with suite.step(f"raw fork/exec floor: {n:,} x /bin/true"):
        found = [peers.floor(n)]
    with suite.step("peers (Ray, Dask, Celery, HyperQueue, Slurm)"):
        found += peers.optional(min(n, 1000), suite.peers, timeout=suite.budget(180, 60))
    return found


def run(suite: Suite) -> list[Row]:
    n = suite.size(10_000, 1_000)
    found = _peers(suite, n)
    suite.fixtures["peers"] = found
    floor = found[0].per_second or 0.0
    peer_text = {p.name: p.text() for p in found}
    with suite.server(KEY) as server, server.client() as admin:
        admin.add_pool("tp", nodes=2, slots=4)
        with suite.step("waiting for 2 idle nodes"):
            admin.wait_nodes_idle("tp", 2, timeout=60)
        admin.add_job("tpjob", "tp")
        with_database = suite.store == "postgres"
        before = cpu_split.sample(server.pid, with_database)
        done = run_job(suite, server, "tpjob", collection_bodies(n), n, suite.budget(200, 60), f"running {n:,} tasks")
        cpu = cpu_split.per_task(before, cpu_split.sample(server.pid, with_database), done.completed)
    completed, elapsed, failures = done.completed, done.elapsed, done.failures
    rate = completed / elapsed if elapsed > 0 else 0.0
    partial = completed < n
    note = f"{completed:,}/{n:,} tasks completed in {elapsed:.1f}s; {done.added:,} added"
    if partial:
        note += f" (time budget {done.budget:.0f}s spent)"
    if failures:
        note += f"; add failed: {failures[0][:200]}"
    of_floor = 100.0 * rate / floor if floor else None
    own = None
    own_note = ""
    if cpu is not None:
        own = cpu.besides_tasks
        own_note = cpu.text("PostgreSQL")
        if floor:
            own_note += (f"; at {TARGET_OF_FLOOR:.0f}% of the floor, {cpu_split.CORES} busy cores leave "
                         f"{cpu.budget(floor * TARGET_OF_FLOOR / 100):.2f} ms a task beside the tasks' own and the clients'")
    return [
        Row(TITLE, f"{n:,} x /bin/true, 2 nodes x 4 slots", rate, "tasks/s", at_least(TARGET_PER_SECOND),
            CLIENT_NAME, note, peer_text, partial),
        Row(TITLE, "of the raw fork/exec floor", of_floor, "%", at_least(TARGET_OF_FLOOR), "",
            f"floor {floor:,.0f} tasks/s (8 threads, subprocess.run)", partial=partial),
        Row(TITLE, "CPU a task: agents + server + database", own, "ms", None, "", own_note, partial=partial),
    ]
