"""Compute node reads (nodes are created by the execution layer)."""

from __future__ import annotations

from ..domain.errors import not_found
from ..store.records import NODES, Record
from .context import ListQuery, Page, ServiceContext, id_key, page_of, require_pool


class NodeService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def list(self, account: str, pool_id: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            pool = require_pool(conn, account, pool_id)
            records = NODES.page(conn, (account, pool.row["id_key"]), query.where, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    def get(self, account: str, pool_id: str, node_id: str) -> Record:
        with self.ctx.store.read() as conn:
            pool = require_pool(conn, account, pool_id)
            record = NODES.get(conn, (account, pool.row["id_key"]), (node_id,))
        if record is None:
            raise not_found("NodeNotFound", "node", node_id)
        return record
