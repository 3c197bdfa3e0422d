"""Task reservations (prefetch, services/reservations.py): the reads and writes of the ``reserved_*`` columns.

A reservation is a task row with a ``reserved_run_id``: reserved while ``reserved_node_pk`` is set,
being cancelled once it is NULL (the agent has been told to drop or kill that run). No rule is
decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .prepared import Prepared

_t = schema.tasks

#: Ids read or written at a time in an IN list.
_CHUNK = 500

_RESERVE = Prepared(_t.update().where(_t.c.pk == sa.bindparam("b_pk"))
                    .values(reserved_run_id=sa.bindparam("b_run"), reserved_node_pk=sa.bindparam("b_node"),
                            reserved_agent_id=sa.bindparam("b_agent"), reserved_at=sa.bindparam("b_at")))
_BY_RUN = Prepared(sa.select(_t.c.pk, _t.c.job_pk, _t.c.state, _t.c.required_slots, _t.c.node_pk, _t.c.run_id,
                             _t.c.reserved_run_id, _t.c.reserved_node_pk, _t.c.reserved_agent_id, _t.c.body)
                   .where(_t.c.reserved_run_id.in_(sa.bindparam("b_runs", expanding=True)))
                   .order_by(_t.c.pk).with_for_update())
_CLEAR = Prepared(_t.update().where(_t.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
                  .values(reserved_run_id=sa.null(), reserved_node_pk=sa.null(), reserved_agent_id=sa.null(),
                          reserved_at=sa.null()))
_CANCEL = Prepared(_t.update().where(_t.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
                   .values(reserved_node_pk=sa.null()))
#: The slots a node's reservations will take (cancelling ones hold nothing of it any more): a column kept
#: with them (a sum over the node's reserved tasks visits every reservation it ever had on PostgreSQL,
#: until a vacuum: migration 0017).
RESERVED_ON_NODE = schema.nodes.c.reserved_slots
_MOVE_RESERVED = Prepared(schema.nodes.update().where(schema.nodes.c.pk == sa.bindparam("b_node"))
                          .values(reserved_slots=schema.nodes.c.reserved_slots + sa.bindparam("b_slots")))
#: What the tasks of ``b_pks`` hold on each node (their reservations, cancelling ones left out).
_HELD_BY_NODE = Prepared(sa.select(_t.c.reserved_node_pk, sa.func.sum(_t.c.required_slots).label("slots"))
                         .where(_t.c.pk.in_(sa.bindparam("b_pks", expanding=True)), _t.c.reserved_node_pk.is_not(None))
                         .group_by(_t.c.reserved_node_pk))


@dataclass(frozen=True, slots=True)
class Reservation:
    task_pk: int
    run_id: str
    node_pk: int | None   # None: being cancelled
    agent_id: str | None


def reserve(conn: Connection, items: Sequence[tuple[int, str, int, str, int]], now: datetime) -> None:
    """Reserve tasks: (task pk, run id, node pk, agent id, the task's slots) each."""
    if items:
        _RESERVE.run_many(conn, [{"b_pk": pk, "b_run": run, "b_node": node, "b_agent": agent, "b_at": now}
                                 for pk, run, node, agent, _ in items])
        held: dict[int, int] = defaultdict(int)
        for _, _, node, _, slots in items:
            held[node] += slots
        move_reserved(conn, held)


def move_reserved(conn: Connection, slots_by_node: Mapping[int, int]) -> None:
    """Add to the nodes' reserved slots (less where reservations ended outside :func:`clear` and
    :func:`mark_cancelling`: their runs started)."""
    moves = [{"b_node": node, "b_slots": slots} for node, slots in sorted(slots_by_node.items()) if slots]
    if moves:
        _MOVE_RESERVED.run_many(conn, moves)


def rows_by_run(conn: Connection, run_ids: Sequence[str]) -> dict[str, Any]:
    """reserved run id -> the (locked) row of the task it reserves (reserved or being cancelled)."""
    found: dict[str, Any] = {}
    for start in range(0, len(run_ids), _CHUNK):
        found.update((row.reserved_run_id, row) for row in _BY_RUN.rows(conn, {"b_runs": list(run_ids[start:start + _CHUNK])}))
    return found


def clear(conn: Connection, task_pks: Iterable[int]) -> None:
    """The reservations are over (their run started, or is gone for good)."""
    _in_chunks(conn, _CLEAR, task_pks)


def mark_cancelling(conn: Connection, task_pks: Iterable[int]) -> None:
    _in_chunks(conn, _CANCEL, task_pks)


def _in_chunks(conn: Connection, statement: Prepared, pks: Iterable[int]) -> None:
    """``statement`` for the tasks of ``pks``, which leave their nodes' reserved slots first."""
    wanted = sorted(set(pks))
    for start in range(0, len(wanted), _CHUNK):
        chunk = {"b_pks": wanted[start:start + _CHUNK]}
        move_reserved(conn, {row.reserved_node_pk: -int(row.slots) for row in _HELD_BY_NODE.rows(conn, chunk)})
        statement.run(conn, chunk)


#: What a :class:`Reservation` is read from. Every read is built once (they run in rounds, Task Add and
#: every task operation, where SQLAlchemy compiling the statement each time cost ~0.5 ms of a call).
_SELECT = sa.select(_t.c.pk, _t.c.reserved_run_id, _t.c.reserved_node_pk, _t.c.reserved_agent_id)
_n = schema.nodes
_j = schema.jobs


def _select(*where: Any, lock: bool = True, joined: Any = None, order: Any = (_t.c.pk,),
            limit: bool = False) -> Prepared:
    statement = (_SELECT if joined is None else _SELECT.join(*joined)).where(*where).order_by(*order)
    if limit:
        statement = statement.limit(sa.bindparam("b_limit"))
    return Prepared(statement.with_for_update(of=_t) if lock else statement)


_HELD = _t.c.reserved_run_id.is_not(None)
_OF_TASKS = _select(_HELD, _t.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
_OF_JOB = _select(_HELD, _t.c.job_pk == sa.bindparam("b_job"), _t.c.reserved_node_pk.is_not(None))
_OF_NODE = _select(_HELD, _t.c.reserved_node_pk == sa.bindparam("b_node"))
_TO_STEAL = _select(_n.c.account == sa.bindparam("b_account"), _n.c.pool_id_key == sa.bindparam("b_pool"),
                    _n.c.pk.not_in(sa.bindparam("b_exclude", expanding=True)),
                    _t.c.required_slots <= sa.bindparam("b_widest"), _t.c.reserved_at < sa.bindparam("b_before"),
                    ~_t.c.body.contains('"affinityInfo"'), joined=(_n, _n.c.pk == _t.c.reserved_node_pk),
                    order=(_t.c.reserved_at.desc(), _t.c.pk.desc()), limit=True)
#: A pool's reservations (cancelling ones left out) in the order of each node's queue, with what
#: domain/reservations.to_yield decides by.
_QUEUES_OF_POOL = Prepared(sa.select(*_SELECT.selected_columns, _t.c.job_pk, _t.c.required_slots,
                                     _n.c.slots.label("node_slots"), _j.c.priority)
                           .join(_n, _n.c.pk == _t.c.reserved_node_pk).join(_j, _j.c.pk == _t.c.job_pk)
                           .where(_n.c.account == sa.bindparam("b_account"), _n.c.pool_id_key == sa.bindparam("b_pool"))
                           .order_by(_t.c.reserved_node_pk, _t.c.reserved_at, _t.c.pk).with_for_update(of=_t))
#: Of the jobs whose tasks a round may reserve (schedule_queries._ACTIVE_JOBS), all but one.
_LOWEST_BESIDE = Prepared(sa.select(sa.func.min(_j.c.priority))
                          .where(_j.c.account == sa.bindparam("b_account"), _j.c.pool_id_key == sa.bindparam("b_pool"),
                                 _j.c.state == "active", _j.c.task_active > 0, _j.c.pk != sa.bindparam("b_job")))
_OF_AGENT = _select(_HELD, _t.c.reserved_agent_id == sa.bindparam("b_agent"))
_OF_AGENT_BEFORE = {lock: _select(_HELD, _t.c.reserved_agent_id == sa.bindparam("b_agent"),
                                  _t.c.reserved_at < sa.bindparam("b_before"), lock=lock) for lock in (False, True)}


def _read(conn: Connection, statement: Prepared, params: dict[str, Any]) -> list[Reservation]:
    return [Reservation(row.pk, row.reserved_run_id, row.reserved_node_pk, row.reserved_agent_id)
            for row in statement.rows(conn, params)]


def of_tasks(conn: Connection, task_pks: Sequence[int]) -> list[Reservation]:
    found: list[Reservation] = []
    wanted = sorted(set(task_pks))
    for start in range(0, len(wanted), _CHUNK):
        found += _read(conn, _OF_TASKS, {"b_pks": wanted[start:start + _CHUNK]})
    return found


def of_job(conn: Connection, job_pk: int) -> list[Reservation]:
    return _read(conn, _OF_JOB, {"b_job": job_pk})


def of_node(conn: Connection, node_pk: int) -> list[Reservation]:
    return _read(conn, _OF_NODE, {"b_node": node_pk})


def to_steal(conn: Connection, account: str, pool_key: str, exclude: Sequence[int], widest: int, before: datetime,
             limit: int) -> list[Reservation]:
    """Up to ``limit`` reservations made before ``before`` on the pool's nodes other than ``exclude``, for
    tasks needing at most ``widest`` slots and naming no affinity, the newest first (the last their
    agents would start)."""
    return _read(conn, _TO_STEAL, {"b_account": account, "b_pool": pool_key, "b_exclude": list(exclude),
                                   "b_widest": widest, "b_before": before, "b_limit": limit})


@dataclass(frozen=True, slots=True, kw_only=True)
class Queued(Reservation):
    """A reservation with its place in its node's queue (domain/reservations.Held)."""
    job_pk: int
    slots: int
    node_slots: int
    priority: int


def queues_of_pool(conn: Connection, account: str, pool_key: str) -> list[Queued]:
    """The pool's reservations (cancelling ones left out), locked, in the order of each node's queue."""
    return [Queued(row.pk, row.reserved_run_id, row.reserved_node_pk, row.reserved_agent_id, job_pk=row.job_pk,
                   slots=row.required_slots, node_slots=row.node_slots, priority=row.priority)
            for row in _QUEUES_OF_POOL.rows(conn, {"b_account": account, "b_pool": pool_key})]


def lowest_priority_beside(conn: Connection, account: str, pool_key: str, job_pk: int) -> int | None:
    """The lowest priority of the pool's other jobs that a round may reserve tasks of (active, with active
    tasks), None when there is none: one row, read through ix_jobs_account_state, however many
    reservations the pool holds."""
    row = _LOWEST_BESIDE.first(conn, {"b_account": account, "b_pool": pool_key, "b_job": job_pk})
    return None if row is None else row[0]


def of_agent(conn: Connection, agent_id: str) -> list[Reservation]:
    """Every reservation made with the agent, cancelling ones included."""
    return _read(conn, _OF_AGENT, {"b_agent": agent_id})


def of_agent_before(conn: Connection, agent_id: str, before: datetime, *, lock: bool = True) -> list[Reservation]:
    """The agent's reservations made before ``before``."""
    return _read(conn, _OF_AGENT_BEFORE[lock], {"b_agent": agent_id, "b_before": before})
