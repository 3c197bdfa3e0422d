"""Named reads of tasks, jobs and preparation/release rows beyond the generic records.

The services ask these questions; the SQL (and the hot prepared statements of exit
reports) is here. No rule is decided here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .loop_reads import LoopReads
from .prepared import Prepared
from .records import JOBS, NODES, PREP_RELEASE, TASKS, Record

_t, _j, _n, _r = schema.tasks, schema.jobs, schema.nodes, schema.prep_release

_ON_NODES = ("preparing", "running")

#: What an exit report needs of a task (not its timestamps): fewer columns to read and convert.
_TASKS_BY_RUN = Prepared(sa.select(_t.c.pk, _t.c.job_pk, _t.c.state, _t.c.required_slots, _t.c.node_pk, _t.c.run_id,
                                   _t.c.body).where(_t.c.run_id.in_(sa.bindparam("b_runs", expanding=True)))
                         .order_by(_t.c.pk).with_for_update())
_JOBS_BY_PK = Prepared(sa.select(_j).where(_j.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
                       .order_by(_j.c.pk).with_for_update())
_NODES_BY_PK = Prepared(sa.select(_n).where(_n.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
                        .order_by(_n.c.pk).with_for_update())

#: A task by its job's id and its own, in one statement (Get Task, polled by clients): the job's row joined
#: with the task's (none: no such job; a job with no task: no such task).
_TASK_OF_JOB = Prepared(sa.select(*_t.c, _j.c.pk.label("found_job_pk"))
                        .select_from(_j.outerjoin(_t, sa.and_(_t.c.job_pk == _j.c.pk,
                                                              _t.c.id_key == sa.bindparam("b_task"))))
                        .where(_j.c.account == sa.bindparam("b_account"), _j.c.id_key == sa.bindparam("b_job")))

#: Ids read at a time in an IN list.
_CHUNK = 500


# -- tasks ----------------------------------------------------------------------------------


def tasks_on_node(conn: Connection, node_pk: int) -> list[Record]:
    """The tasks a node is running (or preparing for): those whose primary runs there, and multi-instance
    tasks one of whose subtasks does (``node_pk`` of those is their primary's node)."""
    holding = sa.select(schema.subtasks.c.task_pk).where(schema.subtasks.c.node_pk == node_pk,
                                                         schema.subtasks.c.run_id.is_not(None))
    rows = conn.execute(sa.select(_t).where(sa.or_(_t.c.node_pk == node_pk, _t.c.pk.in_(holding)),
                                            _t.c.state.in_(_ON_NODES)))
    return [TASKS.record(row) for row in rows]


def tasks_of_job_on_nodes(conn: Connection, job_pk: int) -> list[Record]:
    """The job's tasks running or preparing on a node, locked."""
    rows = conn.execute(sa.select(_t).where(_t.c.job_pk == job_pk, _t.c.state.in_(_ON_NODES)).with_for_update())
    return [TASKS.record(row) for row in rows]


def tasks_preparing_on(conn: Connection, job_pk: int, node_pk: int) -> list[Record]:
    """The job's tasks waiting on the node for its preparation task, locked."""
    rows = conn.execute(sa.select(_t).where(_t.c.job_pk == job_pk, _t.c.node_pk == node_pk,
                                            _t.c.state == "preparing").with_for_update())
    return [TASKS.record(row) for row in rows]


def task_rows_by_run(conn: Connection, run_ids: Sequence[str]) -> dict[str, Any]:
    """run id -> the (locked) row of the task whose current run it is, for an exit report."""
    found: dict[str, Any] = {}
    for start in range(0, len(run_ids), _CHUNK):
        found.update((row.run_id, row) for row in _TASKS_BY_RUN.rows(conn, {"b_runs": run_ids[start:start + _CHUNK]}))
    return found


async def task_of_job_on_loop(reads: LoopReads, account: str, job_id: str, task_id: str) -> tuple[bool, Record | None]:
    """(whether the job exists, the task when it does) on the event loop (PostgreSQL, loop_reads.py):
    one round trip where reading the job and then its task takes two."""
    row = await reads.first(_TASK_OF_JOB, {"b_account": account, "b_job": job_id.lower(), "b_task": task_id.lower()})
    if row is None:
        return False, None
    return True, (TASKS.record(row) if row.pk is not None else None)


def task_by_run(conn: Connection, run_id: str) -> Record | None:
    row = conn.execute(sa.select(_t).where(_t.c.run_id == run_id).with_for_update()).first()
    return TASKS.record(row) if row else None


def tasks_by_keys(conn: Connection, job_pk: int, keys: Sequence[str]) -> list[Any]:
    """Rows (id_key, state, body) of the job's tasks whose lower-cased ids are ``keys``."""
    rows: list[Any] = []
    for start in range(0, len(keys), _CHUNK):
        rows += conn.execute(sa.select(_t.c.id_key, _t.c.state, _t.c.body).where(
            _t.c.job_pk == job_pk, _t.c.id_key.in_(keys[start:start + _CHUNK]))).all()
    return rows


def all_tasks_of_job(conn: Connection, job_pk: int) -> Iterable[Any]:
    """Rows (id_key, state, body) of every task of the job (a scan)."""
    return conn.execute(sa.select(_t.c.id_key, _t.c.state, _t.c.body).where(_t.c.job_pk == job_pk))


def tasks_to_clean(conn: Connection, now: datetime, limit: int) -> list[Record]:
    """Completed tasks whose directory is due for removal (retain_until passed), locked."""
    rows = conn.execute(sa.select(_t).where(_t.c.retain_until <= now, _t.c.files_removed.is_(False),
                                            _t.c.node_pk.is_not(None)).limit(limit).with_for_update())
    return [TASKS.record(row) for row in rows]


def current_runs(conn: Connection, run_ids: set[str]) -> set[str]:
    """Which of ``run_ids`` are still some task's (or its reservation's), subtask's, preparation's, release's or start task's current run."""
    wanted = sorted(run_ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found.update(conn.execute(sa.select(_t.c.run_id).where(_t.c.run_id.in_(chunk))).scalars())
        found.update(conn.execute(sa.select(_t.c.reserved_run_id).where(_t.c.reserved_run_id.in_(chunk))).scalars())
        found.update(conn.execute(sa.select(_r.c.prep_run_id).where(_r.c.prep_run_id.in_(chunk))).scalars())
        found.update(conn.execute(sa.select(_r.c.release_run_id).where(_r.c.release_run_id.in_(chunk))).scalars())
        found.update(conn.execute(sa.select(_n.c.start_run_id).where(_n.c.start_run_id.in_(chunk))).scalars())
        found.update(conn.execute(sa.select(schema.subtasks.c.run_id).where(
            schema.subtasks.c.run_id.in_(chunk))).scalars())
    return found


# -- jobs -----------------------------------------------------------------------------------


def jobs_by_pk(conn: Connection, pks: Sequence[int]) -> dict[int, Record]:
    """The jobs (locked), by pk."""
    return {row.pk: JOBS.record(row) for row in _JOBS_BY_PK.rows(conn, {"b_pks": sorted(pks)})}


def count_jobs(conn: Connection, account: str, *, except_states: Sequence[str]) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(_j).where(
        _j.c.account == account, _j.c.state.not_in(list(except_states)))).scalar_one()


def jobs_with_wall_clock(conn: Connection, states: Sequence[str]) -> list[Any]:
    """Rows (pk, creation_time, body) of jobs in ``states`` whose body names a maxWallClockTime."""
    return conn.execute(sa.select(_j.c.pk, _j.c.creation_time, _j.c.body).where(
        _j.c.state.in_(list(states)), _j.c.body.contains('"maxWallClockTime"'))).all()


# -- nodes by pk (the batch of an exit report) ------------------------------------------------


def nodes_by_pk(conn: Connection, pks: Iterable[int]) -> list[Record]:
    """The nodes (locked), in pk order."""
    return [NODES.record(row) for row in _NODES_BY_PK.rows(conn, {"b_pks": sorted(pks)})]


# -- preparation and release rows ------------------------------------------------------------


def prep_rows_of_node(conn: Connection, node_pk: int) -> list[Record]:
    """Every job's preparation/release row on the node, locked."""
    return [PREP_RELEASE.record(row)
            for row in conn.execute(sa.select(_r).where(_r.c.node_pk == node_pk).with_for_update())]


def prep_row_by_run(conn: Connection, kind: str, run_id: str) -> Record | None:
    """The row whose current preparation (``kind`` "prep") or release ("release") run is ``run_id``."""
    column = _r.c.prep_run_id if kind == "prep" else _r.c.release_run_id
    row = conn.execute(sa.select(_r).where(column == run_id).with_for_update()).first()
    return PREP_RELEASE.record(row) if row else None


def preparation_marks(conn: Connection, job_pks: Sequence[int], node_pks: Sequence[int]) -> list[Any]:
    """Rows (job_pk, node_pk, prep_state, prep_result, prep_stale) of those jobs on those nodes."""
    return conn.execute(sa.select(_r.c.job_pk, _r.c.node_pk, _r.c.prep_state, _r.c.prep_result, _r.c.prep_stale)
                        .where(_r.c.job_pk.in_(list(job_pks)), _r.c.node_pk.in_(list(node_pks)))).all()


#: Nodes that cannot run a release task now: lost, or down (deallocated, preempted) with their disk.
_NOT_LIVE = ("unusable", "deallocated", "preempted")


def _live_prep_rows(job_pk: int) -> sa.Select:
    """Rows (with their node's agent) of nodes still in their pool and up that ran or run the
    job's preparation task."""
    return (sa.select(_r, _n.c.agent_id).join(_n, _n.c.pk == _r.c.node_pk)
            .where(_r.c.job_pk == job_pk, _r.c.prep_state.is_not(None), _n.c.state.notin_(_NOT_LIVE)))


def release_due(conn: Connection, job_pk: int) -> bool:
    """Whether a live node that ran the job's preparation task still runs it, or owes or runs its release."""
    query = _live_prep_rows(job_pk).where(
        sa.or_(_r.c.prep_state == "running", _r.c.release_state.is_(None), _r.c.release_state == "running"))
    return conn.execute(query.limit(1)).first() is not None


def releases_to_start(conn: Connection, job_pk: int) -> list[tuple[Record, str | None]]:
    """(row, agent id) of live nodes whose preparation completed and whose release has not started, locked."""
    rows = conn.execute(_live_prep_rows(job_pk).where(_r.c.prep_state == "completed", _r.c.release_state.is_(None))
                        .with_for_update())
    return [(PREP_RELEASE.record(row), row.agent_id) for row in rows]
