"""Figure 4, Get Task Counts on the million-task job (see :mod:`bench.bigjob`).

Throughput and latency from concurrent closed-loop clients (:mod:`bench.load`:
2 processes x 4 keep-alive connections), then exactness: the answer must equal the
counts recomputed from the rows with COUNT ... GROUP BY.
"""

from __future__ import annotations

import json

from .. import bigjob
from ..load import CLIENT_NAME, hammer
from ..measure import percentile
from ..results import Row, Target, at_least, at_most
from ..suite import Suite

KEY = "counts"
TITLE = "4 task counts"
NEEDS = ("bigjob",)
PROCESSES = 2
CONNECTIONS = 4


def run(suite: Suite) -> list[Row]:
    big = bigjob.get(suite)
    server = big.server
    path = f"/jobs/{big.job_id}/taskcounts?api-version=2024-07-01.20.0"
    seconds = suite.budget(10, 3)
    with suite.step(f"Get Task Counts, {PROCESSES}x{CONNECTIONS} clients, {seconds:.0f}s"):
        load = hammer(server.url, path, server.account, server.key, seconds, PROCESSES, CONNECTIONS)
    with suite.step("checking exactness (COUNT ... GROUP BY)"):
        expected = big.exact_counts()
        with server.client() as client:
            answered = client.task_counts(big.job_id)
    last = json.loads(load.last_body)["taskCounts"] if load.last_body else {}
    exact = answered == expected and (not last or last == expected)
    built = f"{big.tasks:,} tasks built by the fast path in {big.build_seconds:.0f}s ({big.how})"
    errors = f"; {load.errors:,} errors, first: {load.first_error}" if load.errors else ""
    concurrency = (f"{PROCESSES * CONNECTIONS} concurrent clients, "
                   f"{load.requests:,} requests in {seconds:.0f}s")
    return [
        Row(TITLE, f"requests/s on {big.tasks:,} tasks", load.per_second, "req/s", at_least(5_000),
            CLIENT_NAME, concurrency + errors),
        Row(TITLE, "latency p99", percentile(load.latencies_ms, 99), "ms", at_most(3), CLIENT_NAME,
            f"p50 {percentile(load.latencies_ms, 50):.2f} ms"),
        Row(TITLE, "exact (API = COUNT of rows)", 1.0 if exact else 0.0, "bool", Target(">=", 1, "exact"), "",
            f"API {answered}; rows {expected}. {built}"),
    ]
