"""The million-task job of figures 4 and 5, built by a fast path straight into the store.

Adding 1,000,000 tasks through the API would take most of the time budget, so the
job and its pool are created through the API and the tasks are inserted in bulk with
openbatch's own SQLAlchemy schema and record projection (``store.schema.tasks``,
``store.records.TASKS.project``) while the server runs. Their bodies come from the
domain's own transitions (``new_task_body``, ``execution.assigned``, ``execution.exited``),
and every chunk moves the job's counters (``store.records.adjust_counters``) in the
same transaction as its rows, as the services do. States are mixed by ``i % 10``:
4 completed/succeeded, 1 completed/failed, 1 running (on no real node), 4 active.
The pool has no nodes, so nothing changes them afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from .measure import Deadline
from .server import ACCOUNT, Server
from .suite import Suite

from openbatch.domain import clock, counts, execution  # noqa: E402  (bench.server put src on the path)
from openbatch.domain.models import TaskAddParameter, decode
from openbatch.domain.tasks import new_task_body
from openbatch.store import schema
from openbatch.store.engine import Store
from openbatch.store.records import JOBS, TASKS, adjust_counters

JOB = "bigjob"
POOL = "bigpool"
CHUNK = 20_000
#: i % 10 -> which template a task gets.
MIX = ["succeeded"] * 4 + ["failed", "running"] + ["active"] * 4

Json = dict[str, Any]


@dataclass
class BigJob:
    server: Server
    job_id: str
    tasks: int
    build_seconds: float
    how: str

    def exact_counts(self) -> dict[str, int]:
        """The task counts recomputed from the rows (COUNT ... GROUP BY state, result)."""
        store = Store(self.server.database_url)
        try:
            with store.read() as conn:
                job_pk = _job_pk(conn)
                t = schema.tasks
                rows = conn.execute(sa.select(t.c.state, t.c.result, sa.func.count())
                                    .where(t.c.job_pk == job_pk).group_by(t.c.state, t.c.result)).all()
        finally:
            store.dispose()
        totals = dict.fromkeys(counts.COUNTER_NAMES, 0)
        for state, result, number in rows:
            for bucket in counts.buckets(state, result):
                totals[bucket] += int(number)
        return totals


def _job_pk(conn: sa.Connection) -> int:
    j = schema.jobs
    query = sa.select(j.c.pk).where(j.c.account == ACCOUNT, j.c.id_key == JOB.lower())
    return int(conn.execute(query).scalar_one())


def _templates(job_body: Json) -> dict[str, tuple[Json, str]]:
    """Per kind: (the projected columns, the encoded body) of a task whose id is ``__ID__``."""
    now = clock.utcnow()
    task = decode({"id": "__ID__", "commandLine": "/bin/true"}, TaskAddParameter)
    active = new_task_body(task, job_body, now)
    node = {"affinityId": "TVM:bench-phantom", "nodeUrl": "", "poolId": POOL, "nodeId": "bench-phantom",
            "taskRootDirectory": "", "taskRootDirectoryUrl": ""}
    running = execution.assigned(active, node, now, preparing=False)
    bodies = {"active": active, "running": running, "succeeded": execution.exited(running, 0, now),
              "failed": execution.exited(running, 1, now)}
    import msgspec

    return {kind: (TASKS.project(body), msgspec.json.encode(body).decode()) for kind, body in bodies.items()}


def _rows(templates: dict[str, tuple[Json, str]], start: int, stop: int, job_pk: int, mix: list[str],
          prefix: str) -> tuple[list[Json], Counter[str]]:
    rows: list[Json] = []
    change: Counter[str] = Counter()
    now = clock.naive(clock.utcnow())
    for i in range(start, stop):
        kind = mix[i % len(mix)]
        columns, body = templates[kind]
        task_id = f"{prefix}{i:07d}"
        rows.append({**columns, "id": task_id, "id_key": task_id, "job_pk": job_pk,
                     "body": body.replace('"__ID__"', f'"{task_id}"'),
                     "etag": f"0x8DC{i:013X}", "last_modified": now})
        state, result = ("completed", "success") if kind == "succeeded" else \
            ("completed", "failure") if kind == "failed" else (kind, None)
        change.update(counts.delta(None, None, state, result, 1))
    return rows, change


def insert_tasks(server: Server, job_id: str, first: int, stop: int, *, mix: list[str] | None = None,
                 prefix: str = "b", advance: Callable[[int], None] | None = None,
                 deadline: Deadline | None = None) -> int:
    """Insert tasks ``first``..``stop`` (ids ``prefix`` + 7 digits) into the job straight into the store,
    in chunks of :data:`CHUNK`, each moving the job's counters in its own transaction; states by ``mix``
    (default :data:`MIX`), indexed by ``i``. Returns how many were inserted (``deadline`` may stop it)."""
    store = Store(server.database_url)
    inserted = 0
    try:
        with store.read() as conn:
            job = JOBS.get(conn, (ACCOUNT,), (job_id,))
            assert job is not None
        templates = _templates(job.body)
        for start in range(first, stop, CHUNK):
            rows, change = _rows(templates, start, min(stop, start + CHUNK), job.pk, mix or MIX, prefix)
            with store.write() as conn:
                conn.execute(schema.tasks.insert(), rows)
                adjust_counters(conn, job.pk, change)
            inserted += len(rows)
            if advance is not None:
                advance(len(rows))
            if deadline is not None and deadline.passed():
                break
    finally:
        store.dispose()
    return inserted


def analyze(server: Server) -> None:
    """PostgreSQL: ANALYZE tasks (what autovacuum would soon do after a bulk insert); SQLite: nothing."""
    store = Store(server.database_url)
    try:
        if not store.is_sqlite:
            with store.engine.connect() as conn:
                conn.execute(sa.text("ANALYZE tasks"))
                conn.commit()
    finally:
        store.dispose()


def build(suite: Suite, stack: ExitStack) -> BigJob:
    n = suite.size(1_000_000, 50_000)
    server = stack.enter_context(suite.server("bigjob"))
    with server.client() as client:
        client.add_pool(POOL, nodes=0)
        client.add_job(JOB, POOL)
    start = time.perf_counter()
    deadline = Deadline(suite.budget(240, 60))
    with suite.step(f"inserting {n:,} tasks into the store (fast path)", total=n) as step:
        inserted = insert_tasks(server, JOB, 0, n, advance=step.advance, deadline=deadline)
    how = "bulk INSERT via openbatch's SQLAlchemy schema, counters moved per chunk"
    if inserted < n:
        how += f"; stopped at {inserted:,} of {n:,} by its {deadline.seconds:.0f}s budget"
    if not server.database_url.startswith("sqlite"):
        with suite.step("ANALYZE tasks (what autovacuum would do)"):
            analyze(server)
        how += "; ANALYZE tasks afterwards"
    return BigJob(server, JOB, inserted, time.perf_counter() - start, how)


def get(suite: Suite) -> BigJob:
    return suite.fixture("bigjob", lambda stack: build(suite, stack))  # type: ignore[no-any-return]
