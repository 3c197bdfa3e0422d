"""PostgreSQL point reads on the event loop: they see every commit, survive a connection the database
dropped, and each event loop keeps its own connections."""

from __future__ import annotations

import asyncio
from collections import Counter

import psycopg

from openbatch.store.engine import Store
from openbatch.store.records import JOBS, TASKS, adjust_counters, counters_by_id_on_loop
from openbatch.store.task_queries import task_of_job_on_loop

from .test_store import NOW, job_body, task_body


def test_sqlite_reads_in_place_instead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.loop_reads is None
    store.dispose()


def test_reads_on_the_loop_see_each_commit_and_a_missing_row(postgres_store: Store) -> None:
    with postgres_store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    reads = postgres_store.loop_reads
    assert reads is not None

    async def scenario() -> list[int | None]:
        seen: list[int | None] = []
        for _ in range(3):
            with postgres_store.write() as conn:
                adjust_counters(conn, job.pk, Counter({"task_active": 1}))
            rows = await asyncio.gather(*[counters_by_id_on_loop(reads, "acct", "J") for _ in range(6)])
            assert len({row["task_active"] for row in rows if row}) == 1
            seen.append(rows[0]["task_active"] if rows[0] else None)
        seen.append(await counters_by_id_on_loop(reads, "acct", "missing"))  # type: ignore[arg-type]
        await reads.close()
        return seen

    assert asyncio.run(scenario()) == [1, 2, 3, None]


def test_a_connection_the_database_dropped_is_replaced(postgres_store: Store) -> None:
    with postgres_store.write() as conn:
        JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    reads = postgres_store.loop_reads
    assert reads is not None
    admin_url = postgres_store.url.replace("+psycopg", "")

    async def scenario() -> int:
        # Every connection of the loop in use at once, so that each is connected before the kill.
        assert all(await asyncio.gather(*[counters_by_id_on_loop(reads, "acct", "j") for _ in range(8)]))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        for _ in range(8):   # each dead connection met once, and replaced
            row = await counters_by_id_on_loop(reads, "acct", "j")
            assert row is not None and row["task_active"] == 0
        await reads.close()
        return killed[0] if killed else 0

    assert asyncio.run(scenario()) >= 4


def test_each_event_loop_has_its_own_connections(postgres_store: Store) -> None:
    with postgres_store.write() as conn:
        JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    reads = postgres_store.loop_reads
    assert reads is not None

    async def read_once() -> bool:
        found = await counters_by_id_on_loop(reads, "acct", "j") is not None
        await reads.close()
        return found

    assert asyncio.run(read_once()) and asyncio.run(read_once())   # the second loop does not reuse the first's


def test_a_task_is_read_with_its_job_in_one_statement(postgres_store: Store) -> None:
    with postgres_store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("Job"), NOW)
        JOBS.insert(conn, ("acct",), job_body("empty"), NOW)
        task = TASKS.insert(conn, (job.pk,), task_body("Task"), NOW)
    reads = postgres_store.loop_reads
    assert reads is not None

    async def scenario() -> list[tuple[bool, object]]:
        found = [await task_of_job_on_loop(reads, "acct", job_id, task_id)
                 for job_id, task_id in (("JOB", "task"), ("job", "other"), ("empty", "task"), ("missing", "task"))]
        await reads.close()
        return [(job_found, record and (record.pk, record.etag, record.body)) for job_found, record in found]

    assert asyncio.run(scenario()) == [(True, (task.pk, task.etag, task.body)), (True, None), (True, None),
                                       (False, None)]
