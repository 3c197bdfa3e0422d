"""The reads job schedules need beyond their own collection: which are due, and their jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import clock
from . import schema
from .prepared import Prepared
from .records import JOBS, Record

_s, _j = schema.job_schedules, schema.jobs

_DUE = Prepared(sa.select(_s.c.account, _s.c.id).where(_s.c.due_at <= sa.bindparam("b_now")).order_by(_s.c.due_at))
_NEXT_DUE = Prepared(sa.select(sa.func.min(_s.c.due_at)))
_OF_SCHEDULE = (_j.c.account == sa.bindparam("b_account"), _j.c.job_schedule_key == sa.bindparam("b_key"))
_JOBS_IN = Prepared(sa.select(_j).where(*_OF_SCHEDULE, _j.c.state.notin_(sa.bindparam("b_except", expanding=True)))
                    .order_by(_j.c.pk).with_for_update())
_ANY_JOB_IN = Prepared(sa.select(_j.c.pk).where(*_OF_SCHEDULE, _j.c.state.notin_(sa.bindparam("b_except", expanding=True)))
                       .limit(1))
_ANY_JOB = Prepared(sa.select(_j.c.pk).where(*_OF_SCHEDULE).limit(1))
_TOTALS = Prepared(sa.select(sa.func.coalesce(sa.func.sum(_j.c.task_succeeded), 0),
                             sa.func.coalesce(sa.func.sum(_j.c.task_failed), 0)).where(*_OF_SCHEDULE))
_ACTIVE = Prepared(sa.select(sa.func.count()).select_from(_s).where(
    _s.c.account == sa.bindparam("b_account"), _s.c.state.notin_(("completed", "deleting"))))


def due(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    """(account, id) of the schedules the server must look at by ``now``, the longest due first."""
    return [(row.account, row.id) for row in _DUE.rows(conn, {"b_now": clock.naive(now)})]


def next_due(conn: Connection) -> datetime | None:
    """When the next schedule is due (None: none waits for a time)."""
    row = _NEXT_DUE.first(conn)
    return clock.aware(row[0]) if row is not None and row[0] is not None else None


def jobs_of(conn: Connection, account: str, schedule_key: str, except_states: Sequence[str]) -> list[Record]:
    """The schedule's jobs not in ``except_states``, locked, oldest first."""
    rows = _JOBS_IN.rows(conn, {"b_account": account, "b_key": schedule_key, "b_except": list(except_states)})
    return [JOBS.record(row) for row in rows]


def has_job(conn: Connection, account: str, schedule_key: str, except_states: Sequence[str]) -> bool:
    """Whether the schedule has a job not in ``except_states``."""
    params: dict = {"b_account": account, "b_key": schedule_key}
    if not except_states:
        return _ANY_JOB.first(conn, params) is not None
    return _ANY_JOB_IN.first(conn, {**params, "b_except": list(except_states)}) is not None


def task_totals(conn: Connection, account: str, schedule_key: str) -> tuple[int, int]:
    """(succeeded, failed) tasks of the schedule's jobs that still exist."""
    row = _TOTALS.first(conn, {"b_account": account, "b_key": schedule_key})
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def active_schedules(conn: Connection, account: str) -> int:
    """The account's schedules that count against its active jobs and schedules quota."""
    row = _ACTIVE.first(conn, {"b_account": account})
    return int(row[0]) if row is not None else 0
