"""The scheduling round's snapshot reads and plan writes (the hot prepared statements).

What is read is decided here only as far as the indexes go: which nodes can take a task
now (states from the domain), the pool's active jobs with active tasks in priority order,
a job's active tasks in task order through the partial index ``ix_tasks_active``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain.nodes import SCHEDULABLE
from ..domain.reservations import PREFETCH_DEPTH
from . import schema
from .prepared import Prepared, read_ahead
from .reservation_queries import RESERVED_ON_NODE
from .records import JOBS, Record

_n, _j, _t = schema.nodes, schema.jobs, schema.tasks
#: A node that can take a task now (its slots less the reserved ones) ...
_TAKING = (_n.c.state.in_(SCHEDULABLE), _n.c.scheduling_state == "enabled", _n.c.pending_restart.is_(None))
_OPEN = (*_TAKING, _n.c.used_slots + RESERVED_ON_NODE < _n.c.slots)
#: ... or, with prefetch, reserve one (scheduler/round.py; not where its allocation ends).
_OPEN_OR_RESERVING = (*_TAKING, sa.or_(_n.c.used_slots + RESERVED_ON_NODE < _n.c.slots,
                                       sa.and_(_n.c.available_until.is_(None),
                                               RESERVED_ON_NODE < _n.c.slots * PREFETCH_DEPTH)))


def _open_nodes(where: tuple[Any, ...]) -> Prepared:
    return Prepared(sa.select(_n, RESERVED_ON_NODE.label("reserved"))
                    .where(_n.c.account == sa.bindparam("b_account"), _n.c.pool_id_key == sa.bindparam("b_pool"),
                           *where).order_by(_n.c.pk).with_for_update())


#: The statements of a round, built once (SQLAlchemy reuses their compiled form); by whether prefetch is on.
_POOLS_WITH_ROOM = {prefetch: Prepared(sa.select(_n.c.account, _n.c.pool_id_key).distinct().where(*where))
                    for prefetch, where in ((False, _OPEN), (True, _OPEN_OR_RESERVING))}
_OPEN_NODES = {False: _open_nodes(_OPEN), True: _open_nodes(_OPEN_OR_RESERVING)}
_ACTIVE_JOBS = Prepared(sa.select(_j).where(_j.c.account == sa.bindparam("b_account"),
                                            _j.c.pool_id_key == sa.bindparam("b_pool"),
                                            _j.c.state == "active", _j.c.task_active > 0)
                        .order_by(_j.c.priority.desc(), _j.c.pk).with_for_update())
#: The pool's nodes whose reservations hold slots (served by uq_nodes_pool_id).
_HOLDING = Prepared(sa.select(_n.c.pk).where(_n.c.account == sa.bindparam("b_account"),
                                             _n.c.pool_id_key == sa.bindparam("b_pool"), RESERVED_ON_NODE > 0))
_SERVED = Prepared(_j.update().where(_j.c.pk.in_(sa.bindparam("b_pks", expanding=True)))
                   .values(last_served=sa.bindparam("b_now")))
#: What a round needs of a candidate task (not its timestamps): fewer columns to read and convert.
_CANDIDATE_COLUMNS = (_t.c.pk, _t.c.job_pk, _t.c.state, _t.c.required_slots, _t.c.body)
#: ``state = 'active'`` written out (not bound) so that the partial index ix_tasks_active serves it.
_ACTIVE_TASKS = Prepared(sa.select(*_CANDIDATE_COLUMNS)
                         .where(_t.c.job_pk == sa.bindparam("b_job"), _t.c.state == sa.literal_column("'active'"),
                                _t.c.pk > sa.bindparam("b_after"), _t.c.required_slots <= sa.bindparam("b_slots"),
                                _t.c.reserved_run_id.is_(None))
                         .order_by(_t.c.pk).limit(sa.bindparam("b_limit")).with_for_update())


def pools_with_room(conn: Connection, prefetch: bool) -> list[tuple[str, str]]:
    """(account, pool key) of the pools with a node that can take (``prefetch``: or reserve) a task now."""
    return [(r.account, r.pool_id_key) for r in _POOLS_WITH_ROOM[prefetch].rows(conn)]


def read_round_ahead(conn: Connection, account: str, pool_key: str, prefetch: bool) -> None:
    """The round's reads of the pool's open nodes, active jobs and (``prefetch``) nodes holding reservations
    go with its next read, the pool's (on PostgreSQL one round trip for the four; prepared.read_ahead)."""
    params = {"b_account": account, "b_pool": pool_key}
    read_ahead(conn, [(_OPEN_NODES[prefetch], params), (_ACTIVE_JOBS, params)] + ([(_HOLDING, params)] if prefetch else []))


def holding_reservations(conn: Connection, account: str, pool_key: str) -> set[int]:
    """The pks of the pool's nodes whose reservations hold slots (``nodes.reserved_slots`` > 0)."""
    return {row.pk for row in _HOLDING.rows(conn, {"b_account": account, "b_pool": pool_key})}


def open_nodes(conn: Connection, account: str, pool_key: str, prefetch: bool) -> dict[int, Any]:
    """The pool's nodes that can take (``prefetch``: or reserve) a task now: rows by pk with the slots
    their ``reserved`` tasks will take, locked (bodies decoded only when used)."""
    return {row.pk: row for row in _OPEN_NODES[prefetch].rows(conn, {"b_account": account, "b_pool": pool_key})}


def active_jobs(conn: Connection, account: str, pool_key: str) -> list[Record]:
    """The pool's active jobs with active tasks, highest priority first then oldest, locked."""
    return [JOBS.record(row) for row in _ACTIVE_JOBS.rows(conn, {"b_account": account, "b_pool": pool_key})]


def active_tasks(conn: Connection, job_pk: int, after: int, widest: int, limit: int) -> list[Any]:
    """Rows (pk, job_pk, state, required_slots, body) of the job's next ``limit`` active tasks after
    task pk ``after`` that need at most ``widest`` slots and are not reserved, locked."""
    return _ACTIVE_TASKS.rows(conn, {"b_job": job_pk, "b_after": after, "b_slots": widest, "b_limit": limit})


def mark_served(conn: Connection, job_pks: Sequence[int], now: datetime) -> None:
    """The jobs took slots in this round (their turn, for jobDefaultOrder none)."""
    _SERVED.write(conn, {"b_pks": list(job_pks), "b_now": now})
