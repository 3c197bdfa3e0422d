"""Named reads and writes of compute nodes and the agents that host them.

The services ask these questions; the SQL is here. No rule is decided here: what a
state means, when a node is lost or may be removed, is the services' and the domain's.
"""

from __future__ import annotations

from datetime import datetime

from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .records import NODES, Record

_n, _a, _p, _t, _j = schema.nodes, schema.agents, schema.pools, schema.tasks, schema.jobs


# -- agents ---------------------------------------------------------------------------------


def insert_agent(conn: Connection, agent_id: str, account: str, pool_key: str, credential_hash: str,
                 hostname: str, local: bool, registered: Any) -> None:
    conn.execute(_a.insert().values(id=agent_id, account=account, pool_id_key=pool_key,
                                    credential_hash=credential_hash, hostname=hostname[:255], local=local,
                                    registered=registered))


def agent(conn: Connection, agent_id: str) -> Any:
    """The agent's row (id, account, pool_id_key, credential_hash, local, ...) or None."""
    return conn.execute(sa.select(_a).where(_a.c.id == agent_id)).first()


def agent_ids(conn: Connection, *, local: bool) -> list[str]:
    return list(conn.execute(sa.select(_a.c.id).where(_a.c.local.is_(local))).scalars())


def delete_agent(conn: Connection, agent_id: str) -> None:
    """The agent row goes; its nodes (if any are left) have no agent until a new one hosts them."""
    conn.execute(_n.update().where(_n.c.agent_id == agent_id).values(agent_id=None))
    conn.execute(_a.delete().where(_a.c.id == agent_id))


def agent_has_nodes(conn: Connection, agent_id: str) -> bool:
    return conn.execute(sa.select(_n.c.pk).where(_n.c.agent_id == agent_id).limit(1)).first() is not None


def local_agents_of(conn: Connection, node_ids: Sequence[str]) -> list[str]:
    """The local agents hosting any of ``node_ids``."""
    rows = conn.execute(sa.select(_n.c.agent_id).distinct().join(_a, _a.c.id == _n.c.agent_id)
                        .where(_n.c.id_key.in_([i.lower() for i in node_ids]), _a.c.local.is_(True)))
    return list(rows.scalars())


def node_agent(conn: Connection, node_id: str) -> tuple[str | None, bool | None] | None:
    """(agent id, whether that agent is local) of the node with ``node_id``; None if no such node."""
    row = conn.execute(sa.select(_n.c.agent_id, _a.c.local).select_from(_n.outerjoin(_a, _a.c.id == _n.c.agent_id))
                       .where(_n.c.id_key == node_id.lower()).limit(1)).first()
    return None if row is None else (row.agent_id, None if row.local is None else bool(row.local))


# -- nodes ----------------------------------------------------------------------------------


def nodes_of_agent(conn: Connection, agent_id: str, *, for_update: bool = True) -> list[Record]:
    query = sa.select(_n).where(_n.c.agent_id == agent_id)
    return [NODES.record(row) for row in conn.execute(query.with_for_update() if for_update else query)]


def node_ids_of_agent(conn: Connection, agent_id: str) -> list[str]:
    return list(conn.execute(sa.select(_n.c.id).where(_n.c.agent_id == agent_id)).scalars())


def existing_node_keys(conn: Connection, node_ids: Iterable[str]) -> set[str]:
    """The lower-cased ids of those of ``node_ids`` that exist."""
    return set(conn.execute(sa.select(_n.c.id_key).where(_n.c.id_key.in_([i.lower() for i in node_ids]))).scalars())


def unhosted_nodes(conn: Connection, states: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(account, pool id, node id, state) of nodes without an agent, in ``states``, of active pools."""
    rows = conn.execute(
        sa.select(_n.c.account, _p.c.id, _n.c.id, _n.c.state)
        .join(_p, sa.and_(_p.c.account == _n.c.account, _p.c.id_key == _n.c.pool_id_key))
        .where(_n.c.agent_id.is_(None), _n.c.state.in_(list(states)), _p.c.state == "active")
        .order_by(_n.c.pk))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def node_by_start_run(conn: Connection, run_id: str) -> Record | None:
    row = conn.execute(sa.select(_n).where(_n.c.start_run_id == run_id).with_for_update()).first()
    return NODES.record(row) if row else None


def pool_nodes(conn: Connection, account: str, pool_key: str) -> list[Record]:
    return NODES.page(conn, (account, pool_key), None, None, 1_000_000)


def nodes_to_remove(conn: Connection, account: str, pool_key: str, count: int, first_states: Sequence[str],
                    keep_state: str, dedicated: bool = True) -> list[str]:
    """Ids of ``count`` nodes of the pool (of one kind) to take away: those in ``first_states`` first, then
    idle ones, then the least busy (never those already in ``keep_state``)."""
    order = sa.case((_n.c.state.in_(list(first_states)), 0), (_n.c.state == "idle", 1), else_=2)
    rows = conn.execute(sa.select(_n.c.id).where(_n.c.account == account, _n.c.pool_id_key == pool_key,
                                                  _n.c.state != keep_state, _n.c.dedicated == dedicated)
                        .order_by(order, _n.c.running_tasks, _n.c.pk).limit(count))
    return list(rows.scalars())


def low_priority_nodes(conn: Connection, account: str | None, pool_key: str | None,
                       states: Sequence[str]) -> list[Record]:
    """The low-priority nodes in ``states`` (of one pool, or of every pool), locked."""
    where = [~_n.c.dedicated, _n.c.state.in_(list(states))]
    if account is not None:
        where += [_n.c.account == account, _n.c.pool_id_key == pool_key]
    return [NODES.record(row) for row in conn.execute(sa.select(_n).where(*where).order_by(_n.c.pk).with_for_update())]


def preemption_work(conn: Connection, recovered_before: datetime, any_low_priority: bool) -> bool:
    """Whether a preempted node is due back, or (``any_low_priority``) a low-priority node exists."""
    due = sa.select(_n.c.pk).where(_n.c.state == "preempted", _n.c.state_transition_time <= recovered_before)
    if any_low_priority:
        due = due.union_all(sa.select(_n.c.pk).where(~_n.c.dedicated))
    return conn.execute(due.limit(1)).first() is not None


def preempted_before(conn: Connection, before: datetime) -> list[Record]:
    """Nodes preempted before ``before`` (naive UTC), locked: they come back now."""
    rows = conn.execute(sa.select(_n).where(_n.c.state == "preempted", _n.c.state_transition_time <= before)
                        .order_by(_n.c.pk).with_for_update())
    return [NODES.record(row) for row in rows]


def count_by_kind(conn: Connection, account: str, pool_key: str) -> tuple[int, int]:
    """(dedicated, low-priority) nodes of the pool."""
    rows = conn.execute(sa.select(_n.c.dedicated, sa.func.count()).where(
        _n.c.account == account, _n.c.pool_id_key == pool_key).group_by(_n.c.dedicated))
    counts = {bool(r[0]): int(r[1]) for r in rows}
    return counts.get(True, 0), counts.get(False, 0)


def pool_has_node_in(conn: Connection, account: str, pool_key: str, state: str) -> bool:
    return conn.execute(sa.select(_n.c.pk).where(_n.c.account == account, _n.c.pool_id_key == pool_key,
                                                 _n.c.state == state).limit(1)).first() is not None


def node_states_by_pool(conn: Connection, account: str, pool_keys: Sequence[str]) -> list[tuple[str, bool, str, int]]:
    """(pool key, dedicated, node state, how many nodes) of the account's pools ``pool_keys``."""
    rows = conn.execute(sa.select(_n.c.pool_id_key, _n.c.dedicated, _n.c.state, sa.func.count())
                        .where(_n.c.account == account, _n.c.pool_id_key.in_(list(pool_keys)))
                        .group_by(_n.c.pool_id_key, _n.c.dedicated, _n.c.state))
    return [(r[0], bool(r[1]), r[2], int(r[3])) for r in rows]


def nodes_by_vm_size(conn: Connection, account: str, except_pool_key: str) -> list[tuple[str, int]]:
    """(vmSize, how many nodes) of the account's pools other than ``except_pool_key``."""
    rows = conn.execute(sa.select(_p.c.vm_size, sa.func.count(_n.c.pk))
                        .join(_n, sa.and_(_n.c.account == _p.c.account, _n.c.pool_id_key == _p.c.id_key))
                        .where(_p.c.account == account, _p.c.id_key != except_pool_key, _n.c.dedicated)
                        .group_by(_p.c.id_key, _p.c.vm_size))
    return [(r[0], int(r[1])) for r in rows]


def recent_tasks(conn: Connection, node_pks: list[int], per_node: int) -> list[Any]:
    """Rows (node_pk, job_id, id, state, body) of each node's ``per_node`` most recent tasks, newest first."""
    ranked = (
        sa.select(_t.c.node_pk, _j.c.id.label("job_id"), _t.c.id, _t.c.state, _t.c.body,
                  sa.func.row_number().over(partition_by=_t.c.node_pk,
                                            order_by=(_t.c.state_transition_time.desc(), _t.c.pk.desc())).label("n"))
        .join(_j, _j.c.pk == _t.c.job_pk).where(_t.c.node_pk.in_(node_pks)).subquery()
    )
    return conn.execute(sa.select(ranked).where(ranked.c.n <= per_node).order_by(ranked.c.node_pk, ranked.c.n)).all()


def node_pks_of(conn: Connection, node_ids: Sequence[str]) -> list[int]:
    """The pks of the nodes with these ids (node ids are unique)."""
    return list(conn.execute(sa.select(_n.c.pk).where(_n.c.id_key.in_([i.lower() for i in node_ids]))).scalars())


def set_available_until(conn: Connection, node_ids: Sequence[str], until: datetime | None) -> None:
    """When these nodes' allocations end (None: they do not)."""
    conn.execute(_n.update().where(_n.c.id_key.in_([i.lower() for i in node_ids])).values(available_until=until))
