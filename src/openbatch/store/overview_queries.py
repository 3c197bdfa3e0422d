"""Reads of the whole picture: how many tasks, jobs and nodes are in each state, per account and pool.

Cheap at any size: task counts come from the jobs' counter columns (kept in step with every task
change), nodes and jobs are grouped by indexed columns; no task row is read.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .records import POOLS

_j, _n, _p = schema.jobs, schema.nodes, schema.pools
_TASK_COUNTERS = ("task_active", "task_running", "task_completed", "task_succeeded", "task_failed")


def ping(conn: Connection) -> None:
    conn.execute(sa.text("SELECT 1")).scalar()


def task_counts_by_pool(conn: Connection, account: str | None = None) -> list[dict[str, Any]]:
    """Per (account, pool key): the sums of the jobs' task counters (pool key None: a job whose auto pool
    does not exist yet)."""
    query = sa.select(_j.c.account, _j.c.pool_id_key,
                      *[sa.func.sum(_j.c[name]).label(name) for name in _TASK_COUNTERS])
    if account is not None:
        query = query.where(_j.c.account == account)
    query = query.group_by(_j.c.account, _j.c.pool_id_key)
    return [dict(row._mapping) for row in conn.execute(query)]


def jobs_by_state(conn: Connection, account: str | None = None) -> list[tuple[str, str, int]]:
    """(account, state, how many jobs)."""
    query = sa.select(_j.c.account, _j.c.state, sa.func.count())
    if account is not None:
        query = query.where(_j.c.account == account)
    return [tuple(row) for row in conn.execute(query.group_by(_j.c.account, _j.c.state))]  # type: ignore[misc]


def nodes_by_pool(conn: Connection, account: str | None = None) -> list[dict[str, Any]]:
    """Per (account, pool key, state, dedicated): how many nodes, their slots, and the slots in use."""
    query = sa.select(_n.c.account, _n.c.pool_id_key, _n.c.state, _n.c.dedicated,
                      sa.func.count().label("nodes"), sa.func.sum(_n.c.slots).label("slots"),
                      sa.func.sum(_n.c.used_slots).label("used_slots"))
    if account is not None:
        query = query.where(_n.c.account == account)
    query = query.group_by(_n.c.account, _n.c.pool_id_key, _n.c.state, _n.c.dedicated)
    return [dict(row._mapping) for row in conn.execute(query)]


def pools(conn: Connection, account: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(account, pool key, the pool's body) of every pool, by account and id."""
    query = sa.select(_p.c.account, _p.c.id_key, _p.c.body)
    if account is not None:
        query = query.where(_p.c.account == account)
    query = query.order_by(_p.c.account, _p.c.id_key)
    return [(row.account, row.id_key, POOLS.decode(row.body)) for row in conn.execute(query)]


def recent_jobs(conn: Connection, account: str, limit: int, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The account's most recently added jobs (of ``states``, or any), newest first, with their task counters."""
    query = sa.select(_j.c.id, _j.c.state, _j.c.pool_id_key, _j.c.creation_time, _j.c.priority,
                      *[_j.c[name] for name in _TASK_COUNTERS]).where(_j.c.account == account)
    if states:
        query = query.where(_j.c.state.in_(states))
    return [dict(row._mapping) for row in conn.execute(query.order_by(_j.c.pk.desc()).limit(limit))]
