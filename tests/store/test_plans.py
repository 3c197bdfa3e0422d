"""PostgreSQL plans that hold when the tables have grown since they were planned.

Two ways a plan can be older than the data:

- **custom plans** are costed from the statistics of the last ANALYZE (autovacuum's, or none when it
  is off). A job created after it has a job_pk the statistics have never seen, so the planner takes it
  for a few rows, and the job may hold millions;
- **generic plans**: psycopg prepares a statement after five runs, and PostgreSQL may then keep one
  plan for it, made once from the tables as they were (store/loop_reads.PLANNING). A plan made while
  the tables were tiny must still be right once they are large.

Either way, a point read must probe one entry, and no statement of a task's life may read a whole table.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from openbatch.domain.models import (JobAddParameter, JobTerminateParameter, PoolAddParameter, TaskAddParameter,
                                     decode)
from openbatch.domain.quotas import Quotas
from openbatch.protocol import Command, RunCommand
from openbatch.scheduler.round import SchedulingRound
from openbatch.services import Services
from openbatch.services.context import ListQuery, Notifier
from openbatch.store.engine import Store
from openbatch.store.records import JOBS, TASKS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
#: Rows a table grows by after the plans were made: enough that reading them all shows in a plan.
GROWTH = 3_000
#: How each test plans: as a custom plan would be now, or as a generic plan made before the growth.
PLANNINGS = pytest.mark.parametrize("planning", ["custom", "generic"])
#: (query, parameters) of a statement as psycopg ran it.
Statement = tuple[str, Any]


def _job(job_id: str) -> dict:
    return {"id": job_id, "state": "active", "creationTime": "2026-05-01T12:00:00.000000Z",
            "stateTransitionTime": "2026-05-01T12:00:00.000000Z", "priority": 0, "poolInfo": {"poolId": "p"}}


def _task(task_id: str) -> dict:
    return {"id": task_id, "state": "active", "requiredSlots": 1, "creationTime": "2026-05-01T12:00:00Z",
            "stateTransitionTime": "2026-05-01T12:00:00Z", "executionInfo": {"retryCount": 0, "requeueCount": 0}}


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Statement]]:
    """The statements every psycopg cursor runs meanwhile in this test's thread (not in another's: a
    server of an earlier test may still be at work in this process)."""
    seen: list[Statement] = []
    mine = threading.get_ident()

    def recording(original: Callable[..., Any], many: bool) -> Callable[..., Any]:
        def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if threading.get_ident() == mine:
                text = query if isinstance(query, str) else query.as_string(self)
                seen.extend((text, one) for one in (list(params)[:1] if many else [params]))
            return original(self, query, params, **kwargs)
        return execute

    for cursor in (psycopg.Cursor, psycopg.AsyncCursor):
        monkeypatch.setattr(cursor, "execute", recording(cursor.execute, False))
        monkeypatch.setattr(cursor, "executemany", recording(cursor.executemany, True))
    yield seen


class Plans:
    """The plans of statements on a connection of the server's (its planning settings), made before
    ``grow`` (generic: prepared then, as a prepared statement keeps its plan) or after it (custom)."""

    def __init__(self, store: Store, planning: str) -> None:
        self.store, self.planning = store, planning
        self._connection = store.engine.raw_connection()
        self._cursor = self._connection.cursor()
        self._cursor.execute(f"SET plan_cache_mode = force_{planning}_plan")
        self._prepared: dict[str, str] = {}

    def prepare(self, statements: list[Statement]) -> None:
        """Generic plans: make them now (no-op for custom plans, which are made when asked for)."""
        for query, _ in statements:
            if self.planning == "generic" and query not in self._prepared:
                name = self._prepared[query] = f"probe_{len(self._prepared)}"
                self._cursor.execute(f"PREPARE {name} AS {_numbered(query)}")

    def scans(self, query: str, params: Any) -> list[dict]:
        """Every scan of a table in the statement's plan."""
        if self.planning == "custom":
            self._cursor.execute("EXPLAIN (FORMAT JSON) " + query, params)
        else:
            values = _ordered(query, params)
            arguments = sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Literal(value) for value in values)) \
                if values else sql.SQL("")   # (the writers' lock, say, has none)
            self._cursor.execute(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}{}").format(
                sql.Identifier(self._prepared[query]), arguments).as_string(self._connection.driver_connection))
        plan = self._cursor.fetchone()[0]
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
        found: list[dict] = []

        def walk(node: dict) -> None:
            if "Relation Name" in node:
                found.append(node)
            for child in node.get("Plans", []):
                walk(child)

        walk(plan)
        return found

    def close(self) -> None:
        self._connection.rollback()
        self._connection.close()


#: psycopg's placeholders (named or not, text or binary) and its escaped percent sign.
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)[sbt]|%[sbt]")


def _numbered(query: str) -> str:
    """psycopg's placeholders as PostgreSQL's: $1, $2 ... in order of first use, one per name."""
    numbers: dict[str, int] = {}
    unnamed = itertools.count(1)

    def number(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            return f"${next(unnamed)}"
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    return _PLACEHOLDER.sub(number, query)


def _ordered(query: str, params: Any) -> list[Any]:
    """The parameters in the order of :func:`_numbered`'s placeholders."""
    if isinstance(params, dict):
        return [params[name] for name in dict.fromkeys(name for name in _PLACEHOLDER.findall(query) if name)]
    return list(params or [])


@pytest.fixture
def analyzed(postgres_store: Store) -> Store:
    """One job of 3 tasks, analyzed; then a job the statistics never saw, still empty."""
    _three_tasks_analyzed(postgres_store)
    with postgres_store.write() as conn:
        JOBS.insert(conn, ("acct",), _job("new"), NOW)
    return postgres_store


def _three_tasks_analyzed(store: Store) -> None:
    with store.write() as conn:
        old = JOBS.insert(conn, ("acct",), _job("old"), NOW)
        TASKS.insert_many(conn, (old.pk,), [_task(f"o{i}") for i in range(3)], NOW)
    _analyze(store)


def _analyze(store: Store) -> None:
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))


def _grow_new_job(store: Store) -> None:
    with store.write() as conn:
        job = JOBS.get(conn, ("acct",), ("new",))
        assert job is not None
        TASKS.insert_many(conn, (job.pk,), [_task(f"t{i:05d}") for i in range(GROWTH)], NOW)


def _assert_each_probes_one_entry(plans: Plans, reads: list[Statement], table: str = "tasks",
                                  indexes: tuple[str, ...] = ("uq_tasks_job_id", "pk_tasks")) -> None:
    """Each read scans ``table`` only by one of ``indexes`` (a unique key or the primary key: one entry a probe)."""
    assert reads
    for query, params in reads:
        scans = [scan for scan in plans.scans(query, params) if scan["Relation Name"] == table]
        assert scans and all(scan["Node Type"] in ("Index Scan", "Index Only Scan") and scan["Index Name"] in indexes
                             for scan in scans), scans


def _new_job_pk(store: Store) -> int:
    with store.read() as conn:
        job = JOBS.get(conn, ("acct",), ("new",))
        assert job is not None
        return job.pk


@PLANNINGS
def test_a_point_read_of_a_new_jobs_task_probes_one_entry(analyzed: Store, statements: list, planning: str) -> None:
    job_pk = _new_job_pk(analyzed)
    plans = Plans(analyzed, planning)
    try:
        with analyzed.read() as conn:
            del statements[:]
            TASKS.get(conn, (job_pk,), ("t02999",))
        reads = [(q, p) for q, p in statements if "FROM tasks" in q]
        plans.prepare(reads)
        _grow_new_job(analyzed)
        with analyzed.read() as conn:
            assert TASKS.get(conn, (job_pk,), ("t02999",)) is not None
        _assert_each_probes_one_entry(plans, reads)
    finally:
        plans.close()


@PLANNINGS
def test_the_existence_check_of_an_addition_probes_one_entry_per_id(analyzed: Store, statements: list,
                                                                   planning: str) -> None:
    job_pk = _new_job_pk(analyzed)
    plans = Plans(analyzed, planning)
    try:
        with analyzed.read() as conn:
            del statements[:]
            TASKS.existing_keys(conn, (job_pk,), ["t00001", "t02998", "absent"])
        reads = [(q, p) for q, p in statements if "tasks" in q]
        plans.prepare(reads)
        _grow_new_job(analyzed)
        with analyzed.read() as conn:
            assert TASKS.existing_keys(conn, (job_pk,), ["t00001", "t02998", "absent"]) == {"t00001", "t02998"}
        _assert_each_probes_one_entry(plans, reads)
    finally:
        plans.close()


@PLANNINGS
def test_a_point_read_of_a_job_of_a_new_account_probes_one_entry(postgres_store: Store, statements: list,
                                                                planning: str) -> None:
    """The same for jobs: an account the statistics never saw (another account of the server), with many jobs."""
    store = postgres_store
    with store.write() as conn:
        JOBS.insert_many(conn, ("old",), [_job(f"j{i}") for i in range(3)], NOW)
    _analyze(store)
    plans = Plans(store, planning)
    try:
        with store.read() as conn:
            del statements[:]
            JOBS.get(conn, ("new",), ("j02999",))
        reads = [(q, p) for q, p in statements if "FROM jobs" in q]
        plans.prepare(reads)
        with store.write() as conn:
            JOBS.insert_many(conn, ("new",), [_job(f"j{i:05d}") for i in range(GROWTH)], NOW)
        with store.read() as conn:
            assert JOBS.get(conn, ("new",), ("j02999",)) is not None
        _assert_each_probes_one_entry(plans, reads, "jobs", ("uq_jobs_account_id", "pk_jobs"))
    finally:
        plans.close()


class _Commands(Notifier):
    def __init__(self) -> None:
        self.sent: dict[str, list[Command]] = {}

    def push(self, agent_id: str, commands: list[Command]) -> None:
        self.sent.setdefault(agent_id, []).extend(commands)


def _a_task_life(store: Store) -> None:
    """Tasks added (one by one and as a collection of 100, as the bench adds them) to a pool of one node
    with a start task, read, counted, reserved, started and ended by the node's agent, beside the job's
    preparation, then its release when the job is terminated: what the bench runs, through the services."""
    services = Services.create(store, node_provider=True, quotas=Quotas(dedicated_cores=8, pools=5, active_jobs=5))
    commands = services.ctx.notifier = _Commands()
    services.ctx.schedule_in = SchedulingRound(services.ctx).schedule_pool_in
    services.pools.add("acct", decode({
        "id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "taskSlotsPerNode": 2,
        "startTask": {"commandLine": "/bin/true", "waitForSuccess": True},
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                           "sku": "22_04-lts"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}, PoolAddParameter))
    services.jobs.add("acct", decode({"id": "life", "poolInfo": {"poolId": "p"},
                                      "jobPreparationTask": {"commandLine": "/bin/true"},
                                      "jobReleaseTask": {"commandLine": "/bin/true"}}, JobAddParameter))
    from openbatch.services.agents import unhosted_local_nodes
    node_ids = [node_id for _, _, node_id, _ in unhosted_local_nodes(services.ctx)]
    agent_id, credential, _ = services.agents.register("acct", "p", "host", node_ids=node_ids)
    services.agents.node_ready(services.agents.authenticate(agent_id, credential), node_ids[0])
    answered: list[Command] = []

    def run_what_comes() -> None:
        nonlocal answered
        for _ in range(200):
            runs = [c for c in commands.sent.pop(agent_id, []) + answered if isinstance(c, RunCommand)]
            if not runs:
                return
            events: list[dict[str, Any]] = [{"type": "started", "id": run.id} for run in runs if run.reserved]
            events += [{"type": "exited", "id": run.id, "exitCode": 0} for run in runs]
            answered = services.runs.report(agent_id, events, None, True)

    run_what_comes()   # the start task
    for task_id in ("a", "b", "c"):
        services.tasks.add("acct", "life", decode({"id": task_id, "commandLine": "/bin/true"}, TaskAddParameter))
    services.tasks.add_collection("acct", "life", [decode({"id": f"c{i}", "commandLine": "/bin/true"},
                                                          TaskAddParameter) for i in range(100)])
    services.tasks.get("acct", "life", "a")
    services.jobs.task_counts("acct", "life")
    asyncio.run(services.tasks.get_on_loop("acct", "life", "b"))
    asyncio.run(services.jobs.task_counts_on_loop("acct", "life"))
    run_what_comes()
    assert services.jobs.task_counts("acct", "life")["taskCounts"]["completed"] == 103
    services.jobs.terminate("acct", "life", decode({}, JobTerminateParameter))
    run_what_comes()   # the release
    (status,) = services.prep_release.list("acct", "life", ListQuery()).records
    assert status.body["jobReleaseTaskExecutionInfo"]["state"] == "completed", status.body


def test_no_statement_of_a_task_life_reads_a_whole_table(postgres_store: Store, postgres_databases: Callable[[], str],
                                                         statements: list) -> None:
    """Every statement a task's life runs, planned generic while the tables are tiny (a new database,
    analyzed), still reads each table by an index once they have grown."""
    _a_task_life(postgres_store)
    life = list({query: (query, params) for query, params in statements
                 if query.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"))}.values())
    assert len(life) > 20
    new = Store(postgres_databases())
    new.migrate()
    _three_tasks_analyzed(new)
    plans = Plans(new, "generic")
    try:
        plans.prepare(life)
        with new.write() as conn:
            JOBS.insert_many(conn, ("acct",), [_job(f"grown{i:05d}") for i in range(GROWTH)], NOW)
            job = JOBS.get(conn, ("acct",), ("grown00000",))
            assert job is not None
            TASKS.insert_many(conn, (job.pk,), [_task(f"t{i:05d}") for i in range(GROWTH)], NOW)
        whole = [(query, scan["Relation Name"]) for query, params in life for scan in plans.scans(query, params)
                 if scan["Node Type"] == "Seq Scan"]
        assert not whole, whole
    finally:
        plans.close()
        new.dispose()
