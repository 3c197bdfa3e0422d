"""Task directories leave their node when the task's retentionTime has passed (or the task is deleted).

After that the task's files answer 409 ``TaskFilesCleanedup``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import clock
from ..store import schema
from ..store.records import NODES, TASKS, Record
from .context import ServiceContext

BATCH = 500


def remove_task_directory(ctx: ServiceContext, conn: Connection, task: Record) -> None:
    """Tell the task's node to delete its directory (after commit) and remember it is gone."""
    node_pk = task.row.get("node_pk")
    node_info = task.body.get("nodeInfo")
    if node_pk is None or not node_info:
        return
    node = NODES.get_by_pk(conn, node_pk)
    if node is not None:
        ctx.send(conn, node.row["agent_id"], [{"type": "removeTaskDir", "nodeId": node.body["id"],
                                               "taskDir": node_info.get("taskRootDirectory", "")}])
    TASKS.set_columns(conn, task.pk, files_removed=True)


class Retention:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def remove_expired(self) -> int:
        t = schema.tasks
        now = clock.naive(self.ctx.now())
        with self.ctx.store.write() as conn:
            rows = conn.execute(sa.select(t).where(t.c.retain_until <= now, t.c.files_removed.is_(False),
                                                   t.c.node_pk.is_not(None)).limit(BATCH).with_for_update()).all()
            for row in rows:
                remove_task_directory(self.ctx, conn, TASKS.record(row))
        return len(rows)
