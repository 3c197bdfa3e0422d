"""Compute node reads (nodes are created by the execution layer), with their recent tasks."""

from __future__ import annotations

from typing import Any

from ..domain import nodes as node_rules
from ..domain.errors import BatchError, not_found
from ..store import node_queries
from ..store.engine import Connection
from ..store.records import NODES, Record
from .context import ListQuery, Page, ServiceContext, id_key, page_of, require_pool

Json = dict[str, Any]

#: How many tasks ComputeNode.recentTasks lists.
RECENT_TASKS = 5


def recent_tasks(conn: Connection, node_pks: list[int]) -> dict[int, list[Json]]:
    """node pk -> its most recent tasks as (jobId, taskId, taskState, executionInfo), newest first."""
    if not node_pks:
        return {}
    rows = node_queries.recent_tasks(conn, node_pks, RECENT_TASKS)
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

    def extensions(self, account: str, pool_id: str, node_id: str) -> list[Json]:
        """The VM extensions on the node: none (a pool's extensions are refused: nothing installs them here)."""
        self.get(account, pool_id, node_id)
        return []

    def extension(self, account: str, pool_id: str, node_id: str, name: str) -> Json:
        for extension in self.extensions(account, pool_id, node_id):
            if extension["vmExtension"]["name"].lower() == name.lower():
                return extension
        raise not_found("ResourceNotFound", "extension", name)

    def remote_login(self, account: str, pool_id: str, node_id: str) -> Json:
        """The node's SSH endpoint: its host's address and port, when an SSH server listens there."""
        settings = node_rules.remote_login(self.get(account, pool_id, node_id).body)
        if settings is None:
            raise BatchError("OperationNotValidOnNode", "No SSH server listens on this node's host, so the node "
                             "cannot be reached for a remote login.", [("NodeId", node_id)])
        return settings

    def remote_desktop(self, account: str, pool_id: str, node_id: str) -> bytes:
        """GetRemoteDesktop gives an RDP file for Windows nodes; nodes here run Linux (use SSH)."""
        self.get(account, pool_id, node_id)
        raise BatchError("OperationNotValidOnNode", "Remote Desktop is for Windows nodes; this node runs Linux: its "
                         "remote login is SSH (GetRemoteLoginSettings).", [("NodeId", node_id)])

    def get_with_recent(self, account: str, pool_id: str, node_id: str) -> tuple[Record, list[Json]]:
        record = self.get(account, pool_id, node_id)
        with self.ctx.store.read() as conn:
            return record, recent_tasks(conn, [record.pk]).get(record.pk, [])
