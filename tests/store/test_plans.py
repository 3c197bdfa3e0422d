"""PostgreSQL plans that hold when the statistics are older than the data.

Statistics come from the last ANALYZE (autovacuum's, or none when it is off). A job created
after it has a job_pk the statistics have never seen, so the planner takes it for a few rows,
and the job may hold millions. A point read of one of its tasks must still probe one entry.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, Iterator

import psycopg
import pytest
import sqlalchemy as sa

from openbatch.store.engine import Store
from openbatch.store.records import JOBS, TASKS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
#: Tasks of the job the statistics never saw: enough that reading all its entries shows in the plan.
NEW_JOB_TASKS = 3_000


def _job(job_id: str) -> dict:
    return {"id": job_id, "state": "active", "creationTime": "2026-05-01T12:00:00.000000Z",
            "stateTransitionTime": "2026-05-01T12:00:00.000000Z", "priority": 0, "poolInfo": {"poolId": "p"}}


def _task(task_id: str) -> dict:
    return {"id": task_id, "state": "active", "requiredSlots": 1, "creationTime": "2026-05-01T12:00:00Z",
            "stateTransitionTime": "2026-05-01T12:00:00Z", "executionInfo": {"retryCount": 0, "requeueCount": 0}}


@pytest.fixture
def stale(postgres_store: Store) -> Store:
    """One job of 3 tasks, analyzed; then a job of :data:`NEW_JOB_TASKS` the statistics never saw."""
    with postgres_store.write() as conn:
        old = JOBS.insert(conn, ("acct",), _job("old"), NOW)
        TASKS.insert_many(conn, (old.pk,), [_task(f"o{i}") for i in range(3)], NOW)
    with postgres_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    with postgres_store.write() as conn:
        new = JOBS.insert(conn, ("acct",), _job("new"), NOW)
        TASKS.insert_many(conn, (new.pk,), [_task(f"t{i:05d}") for i in range(NEW_JOB_TASKS)], NOW)
    return postgres_store


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """The (query, parameters) every psycopg cursor runs meanwhile in this test's thread (not in another's:
    a server of an earlier test may still be at work in this process)."""
    seen: list[tuple[str, Any]] = []
    original = psycopg.Cursor.execute
    mine = threading.get_ident()

    def execute(self: psycopg.Cursor, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if threading.get_ident() == mine:
            seen.append((query if isinstance(query, str) else query.as_string(self), params))
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    yield seen


def _scans(store: Store, query: str, params: Any, table: str = "tasks") -> list[dict]:
    """The plan's scans of ``table``, as PostgreSQL plans them now (custom, as the engine runs them)."""
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SET plan_cache_mode = force_custom_plan")
        cursor.execute("EXPLAIN (FORMAT JSON) " + query, params)
        plan = cursor.fetchone()[0]
    finally:
        connection.rollback()
        connection.close()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: list[dict] = []

    def walk(node: dict) -> None:
        if node.get("Relation Name") == table:
            found.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _assert_each_probes_one_entry(store: Store, reads: list[tuple[str, Any]], table: str = "tasks",
                                  indexes: tuple[str, ...] = ("uq_tasks_job_id", "pk_tasks")) -> None:
    """Each read scans ``table`` only by one of ``indexes`` (a unique key or the primary key: one entry a probe)."""
    assert reads
    for query, params in reads:
        scans = _scans(store, query, params, table)
        assert scans and all(scan["Node Type"] in ("Index Scan", "Index Only Scan") and scan["Index Name"] in indexes
                             for scan in scans), scans


def test_a_point_read_of_a_new_jobs_task_probes_one_entry(stale: Store, statements: list) -> None:
    with stale.read() as conn:
        job = JOBS.get(conn, ("acct",), ("new",))
        assert job is not None
        del statements[:]
        assert TASKS.get(conn, (job.pk,), ("t02999",)) is not None
    _assert_each_probes_one_entry(stale, [(q, p) for q, p in statements if "FROM tasks" in q])


def test_the_existence_check_of_an_addition_probes_one_entry_per_id(stale: Store, statements: list) -> None:
    with stale.read() as conn:
        job = JOBS.get(conn, ("acct",), ("new",))
        assert job is not None
        del statements[:]
        found = TASKS.existing_keys(conn, (job.pk,), ["t00001", "t02998", "absent"])
    assert found == {"t00001", "t02998"}
    _assert_each_probes_one_entry(stale, [(q, p) for q, p in statements if "tasks" in q])


def test_a_point_read_of_a_job_of_a_new_account_probes_one_entry(postgres_store: Store, statements: list) -> None:
    """The same for jobs: an account the statistics never saw (another account of the server), with many jobs."""
    store = postgres_store
    with store.write() as conn:
        JOBS.insert_many(conn, ("old",), [_job(f"j{i}") for i in range(3)], NOW)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    with store.write() as conn:
        JOBS.insert_many(conn, ("new",), [_job(f"j{i:05d}") for i in range(NEW_JOB_TASKS)], NOW)
    with store.read() as conn:
        del statements[:]
        assert JOBS.get(conn, ("new",), ("j02999",)) is not None
    _assert_each_probes_one_entry(store, [(q, p) for q, p in statements if "FROM jobs" in q], "jobs",
                                  ("uq_jobs_account_id", "pk_jobs"))
