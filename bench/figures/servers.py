"""Figure 9, several API servers on one PostgreSQL database: ingest and Get Task Counts through one
server and then spread over two (the ratio says how they scale), and the leader's failover.

- Ingest: N tasks through AddTaskCollection (100 a call) from 4 clients into a new job of a pool without
  nodes: all 4 on the first server; then N into another new job, 2 clients on each server.
- Counts: Get Task Counts on that job from 2 processes x 4 connections: both on the first server,
  then one process on each.
- Failover: a pool of one local node, hosted by the leader; the leader is killed with kill -9 and a
  ``/bin/true`` task added through the other server: the time from the kill until that task has
  completed (the other server takes the leader lock, brings the node back on a new agent, and runs
  the task; "running" alone would count a start on the dead leader's node, which never happens).

Both servers and the clients share this machine's cores, so two servers cannot be twice one here:
the ratio shows what the database and the servers' coordination cost. SQLite serves one server
alone: the row says so.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from ..load import hammer
from ..measure import Deadline, percentile
from ..results import Row, error_row
from ..server import CLIENT_NAME, Server, collection_bodies, new_key, start_server
from ..suite import Suite
from .ingest import add_concurrently

KEY = "servers"
TITLE = "9 two servers"
NEEDS: tuple[str, ...] = ()

def _ingest(suite: Suite, servers: list[Server], job_id: str, n: int) -> tuple[float, int]:
    """Add ``n`` tasks with 4 clients spread over ``servers``: (tasks/s, tasks added)."""
    done = add_concurrently(suite, servers, job_id, collection_bodies(n, prefix=f"{len(servers)}s"), n,
                            Deadline(suite.budget(120, 30)))
    if done.failures:
        raise RuntimeError(done.failures[0][:300])
    return done.added / done.elapsed, done.added


def _failover(suite: Suite, leader: Server, other: Server) -> float:
    with leader.client() as a:
        a.add_pool("fo", nodes=1)
        a.wait_nodes_idle("fo", 1, timeout=60)
        a.add_job("fojob", "fo")
    with suite.step("kill -9 of the leader, until a task added through the other server has run"):
        leader.process.kill()
        killed = time.perf_counter()
        with other.client() as b:
            b.add_collection("fojob", collection_bodies(1)[0])
            deadline = Deadline(60)
            while not deadline.passed():
                if b.task_counts("fojob")["completed"]:
                    return time.perf_counter() - killed
                time.sleep(0.02)
    raise RuntimeError("no task completed within 60 s of the leader's kill")


def run(suite: Suite) -> list[Row]:
    if suite.store != "postgres":
        return [error_row(TITLE, RuntimeError("several servers share PostgreSQL, not SQLite: see --store postgres"))]
    n = suite.size(50_000, 5_000)
    url = suite.databases.new()
    key = new_key()
    try:
        with ExitStack() as stack:
            with suite.step("starting two servers on one database"):
                first, second = (stack.enter_context(start_server(url, data_root=suite.data_root, key=key,
                                                                  extra_args=suite.server_args))
                                 for _ in range(2))
            with first.client() as setup:
                setup.add_pool("empty", nodes=0)
                setup.add_job("ingjob", "empty")
                setup.add_job("ingjob2", "empty")
            one, added_one = _ingest(suite, [first], "ingjob", n)
            two, added_two = _ingest(suite, [first, second], "ingjob2", n)
            path = "/jobs/ingjob/taskcounts?api-version=2024-07-01.20.0"
            seconds = suite.budget(10, 3)
            with suite.step(f"Get Task Counts through one server, {seconds:.0f}s"):
                counts_one = hammer(first.url, path, first.account, first.key, seconds, 2, 4)
            with suite.step(f"Get Task Counts through two servers, {seconds:.0f}s"):
                counts_two = hammer([first.url, second.url], path, first.account, first.key, seconds, 2, 4)
            with second.client() as check:
                active = check.task_counts("ingjob")["active"] + check.task_counts("ingjob2")["active"]
            failover = _failover(suite, first, second)
    finally:
        suite.databases.drop(url)
    exact = "exact" if active == added_one + added_two else f"MISMATCH: {active:,} active"
    return [
        Row(TITLE, f"ingest, {n:,} tasks, 4 clients on 1 server", one, "tasks/s", None, CLIENT_NAME, ""),
        Row(TITLE, "ingest, the same on 2 servers (2 clients each)", two, "tasks/s", None, CLIENT_NAME,
            f"ratio {two / one:.2f}; task counts after both: {exact}"),
        Row(TITLE, "Get Task Counts, 2x4 clients on 1 server", counts_one.per_second, "req/s", None, CLIENT_NAME,
            f"p99 {percentile(counts_one.latencies_ms, 99):.2f} ms"),
        Row(TITLE, "Get Task Counts, 1x4 clients on each of 2 servers", counts_two.per_second, "req/s", None,
            CLIENT_NAME, f"ratio {counts_two.per_second / counts_one.per_second:.2f}; "
                         f"p99 {percentile(counts_two.latencies_ms, 99):.2f} ms"),
        Row(TITLE, "leader failover: kill -9 to a new task completed", failover, "s", None, CLIENT_NAME,
            "the other server takes the lock, brings the node back on a new agent, runs the task"),
    ]
