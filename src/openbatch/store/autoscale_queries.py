"""What autoscale reads and records: pools due for an evaluation, their samples, their jobs' task
totals and their nodes by kind and state; and the pools' usage per interval the samples add up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import clock
from . import schema
from ..odata.fields import BoundAnd, BoundComparison, FieldSpec
from .prepared import Prepared
from .records import POOL_USAGE

_p, _j, _n, _s, _a = schema.pools, schema.jobs, schema.nodes, schema.pool_samples, schema.agents
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_DUE = Prepared(sa.select(_p.c.account, _p.c.id).where(_p.c.autoscale_due_at <= sa.bindparam("b_now"))
                .order_by(_p.c.autoscale_due_at))
_NEXT_DUE = Prepared(sa.select(sa.func.min(_p.c.autoscale_due_at)))
_SAMPLED = Prepared(sa.select(_p.c.pk, _p.c.account, _p.c.id_key, _p.c.body).where(_p.c.state == "active"))
_NODES = Prepared(sa.select(_n.c.dedicated, _n.c.state, sa.func.count())
                  .where(_n.c.account == sa.bindparam("b_account"), _n.c.pool_id_key == sa.bindparam("b_pool"))
                  .group_by(_n.c.dedicated, _n.c.state))
_ALL_TASKS = Prepared(sa.select(_j.c.account, _j.c.pool_id_key, sa.func.sum(_j.c.task_active),
                                sa.func.sum(_j.c.task_running), sa.func.sum(_j.c.task_succeeded),
                                sa.func.sum(_j.c.task_failed)).where(_j.c.pool_id_key.is_not(None))
                      .group_by(_j.c.account, _j.c.pool_id_key))
_ALL_NODES = Prepared(sa.select(_n.c.account, _n.c.pool_id_key, _n.c.dedicated, _n.c.state, sa.func.count())
                      .group_by(_n.c.account, _n.c.pool_id_key, _n.c.dedicated, _n.c.state))
_ALL_USAGE = Prepared(sa.select(_a.c.account, _a.c.pool_id_key, _a.c.id, _a.c.usage).where(
    _a.c.usage.is_not(None), sa.func.coalesce(_a.c.seen_at, _a.c.registered) >= sa.bindparam("b_since")))
_INSERT_MANY = Prepared(_s.insert().values(pool_pk=sa.bindparam("b_pool"), time=sa.bindparam("b_time"),
                                           body=sa.bindparam("b_body")))
_RECENT = Prepared(sa.select(_s.c.time, _s.c.body).where(_s.c.pool_pk == sa.bindparam("b_pool"),
                                                          _s.c.time > sa.bindparam("b_since")).order_by(_s.c.time))
_LAST = Prepared(sa.select(_s.c.body).where(_s.c.pool_pk == sa.bindparam("b_pool"))
                 .order_by(_s.c.time.desc()).limit(1))
_pu = schema.pool_usage
_ADD_USAGE = Prepared(_pu.update().where(_pu.c.account == sa.bindparam("b_account"),
                                         _pu.c.interval_key == sa.bindparam("b_interval"),
                                         _pu.c.pool_id_key == sa.bindparam("b_pool"))
                      .values(core_seconds=_pu.c.core_seconds + sa.bindparam("b_add")))
_PRUNE = Prepared(_s.delete().where(_s.c.time < sa.bindparam("b_before")))


def due(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    """(account, pool id) of the pools whose next evaluation is due by ``now``."""
    return [(row.account, row.id) for row in _DUE.rows(conn, {"b_now": clock.naive(now)})]


def next_due(conn: Connection) -> datetime | None:
    row = _NEXT_DUE.first(conn)
    return clock.aware(row[0]) if row is not None and row[0] is not None else None


def sampled_pools(conn: Connection) -> list[tuple[int, str, str, Any]]:
    """(pk, account, pool key, body) of every active pool: each gets a sample."""
    return [(row.pk, row.account, row.id_key, _decode(row.body)) for row in _SAMPLED.rows(conn)]


def node_kinds(conn: Connection, account: str, pool_key: str) -> list[tuple[bool, str, int]]:
    """(dedicated, state, how many) of the pool's nodes."""
    return [(bool(row[0]), row[1], int(row[2])) for row in _NODES.rows(conn, {"b_account": account, "b_pool": pool_key})]


PoolKey = tuple[str, str]


def task_totals_by_pool(conn: Connection) -> dict[PoolKey, dict[str, int]]:
    """The tasks of the jobs on each pool that has jobs, in one read: active and running now, succeeded and
    failed so far."""
    return {(row[0], row[1]): {"active": int(row[2] or 0), "running": int(row[3] or 0),
                               "succeeded": int(row[4] or 0), "failed": int(row[5] or 0)}
            for row in _ALL_TASKS.rows(conn)}


def node_kinds_by_pool(conn: Connection) -> dict[PoolKey, list[tuple[bool, str, int]]]:
    """(dedicated, state, how many) of every pool's nodes, in one read."""
    kinds: dict[PoolKey, list[tuple[bool, str, int]]] = {}
    for row in _ALL_NODES.rows(conn):
        kinds.setdefault((row[0], row[1]), []).append((bool(row[2]), row[3], int(row[4])))
    return kinds


def agent_usage_by_pool(conn: Connection, since: datetime) -> dict[PoolKey, dict[str, dict]]:
    """The host usage each agent of each pool that called since ``since`` last reported, in one read."""
    usage: dict[PoolKey, dict[str, dict]] = {}
    for row in _ALL_USAGE.rows(conn, {"b_since": clock.naive(since)}):
        usage.setdefault((row.account, row.pool_id_key), {})[row.id] = _decode(row.usage)
    return usage


def record_samples(conn: Connection, time: datetime, samples: dict[int, dict]) -> None:
    """One sample per pool (by pk), in one statement."""
    stamp = clock.naive(time)
    _INSERT_MANY.run_many(conn, [{"b_pool": pk, "b_time": stamp, "b_body": _encode(values).decode()}
                                 for pk, values in samples.items()])


def recent_samples(conn: Connection, pool_pk: int, since: datetime) -> list[tuple[datetime, dict]]:
    """The pool's samples after ``since``, oldest first."""
    return [(clock.aware(row.time), _decode(row.body)) for row in
            _RECENT.rows(conn, {"b_pool": pool_pk, "b_since": clock.naive(since)})]  # type: ignore[misc]


def last_sample(conn: Connection, pool_pk: int) -> dict | None:
    row = _LAST.first(conn, {"b_pool": pool_pk})
    return _decode(row.body) if row is not None else None


def add_usage(conn: Connection, account: str, body: dict, seconds: float) -> None:
    """Add core seconds to a pool's interval (its row made on the interval's first sample)."""
    params = {"b_account": account, "b_interval": body["startTime"], "b_pool": body["poolId"].lower(),
              "b_add": seconds}
    if _ADD_USAGE.run(conn, params) == 0:
        POOL_USAGE.insert(conn, (account,), body, clock.utcnow(), extra={"core_seconds": seconds})


def usage_page(conn: Connection, account: str, first: datetime, stop: datetime, bound_filter: Any,
               after: Any, limit: int) -> list:
    """Usage entries of intervals starting in [first, stop) that match ``bound_filter``, by interval then pool."""
    spec = FieldSpec("datetime", frozenset({"ge", "lt"}))
    within: Any = BoundAnd((BoundComparison("startTime", "ge", first, spec),
                            BoundComparison("startTime", "lt", stop, spec)))
    if bound_filter is not None:
        within = BoundAnd((within, bound_filter))
    return POOL_USAGE.page(conn, (account,), within, after, limit)


def prune_samples(conn: Connection, before: datetime) -> None:
    """Samples older than any formula may ask for go."""
    _PRUNE.run(conn, {"b_before": clock.naive(before)})
