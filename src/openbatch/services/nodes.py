"""Compute node reads (nodes are created by the execution layer), with their recent tasks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain.errors import not_found
from ..store import schema
from ..store.records import NODES, Record
from .context import ListQuery, Page, ServiceContext, id_key, page_of, require_pool

Json = dict[str, Any]

#: How many tasks ComputeNode.recentTasks lists.
RECENT_TASKS = 5


def recent_tasks(conn: Connection, node_pks: list[int]) -> dict[int, list[Json]]:
    """node pk -> its most recent tasks as (jobId, taskId, taskState, executionInfo), newest first."""
    if not node_pks:
        return {}
    t, j = schema.tasks, schema.jobs
    ranked = (
        sa.select(t.c.node_pk, j.c.id.label("job_id"), t.c.id, t.c.state, t.c.body,
                  sa.func.row_number().over(partition_by=t.c.node_pk,
                                            order_by=(t.c.state_transition_time.desc(), t.c.pk.desc())).label("n"))
        .join(j, j.c.pk == t.c.job_pk).where(t.c.node_pk.in_(node_pks)).subquery()
    )
    rows = conn.execute(sa.select(ranked).where(ranked.c.n <= RECENT_TASKS).order_by(ranked.c.node_pk, ranked.c.n))
    found: dict[int, list[Json]] = {}
    for row in rows:
        body = NODES.decode(row.body)
        found.setdefault(row.node_pk, []).append(
            {"jobId": row.job_id, "taskId": row.id, "taskState": row.state, "executionInfo": body.get("executionInfo", {})})
    return found


class NodeService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def list(self, account: str, pool_id: str, query: ListQuery) -> tuple[Page, dict[int, list[Json]]]:
        with self.ctx.store.read() as conn:
            pool = require_pool(conn, account, pool_id)
            records = NODES.page(conn, (account, pool.row["id_key"]), query.filter, query.after, query.limit + 1)
            page = page_of(records, query.limit, id_key)
            return page, recent_tasks(conn, [r.pk for r in page.records])

    def get(self, account: str, pool_id: str, node_id: str) -> Record:
        with self.ctx.store.read() as conn:
            pool = require_pool(conn, account, pool_id)
            record = NODES.get(conn, (account, pool.row["id_key"]), (node_id,))
        if record is None:
            raise not_found("NodeNotFound", "node", node_id)
        return record

    def get_with_recent(self, account: str, pool_id: str, node_id: str) -> tuple[Record, list[Json]]:
        record = self.get(account, pool_id, node_id)
        with self.ctx.store.read() as conn:
            return record, recent_tasks(conn, [record.pk]).get(record.pk, [])
