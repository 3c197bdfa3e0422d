"""Task directories leave their node when the task's retentionTime has passed (or the task is deleted).

After that the task's files answer 409 ``TaskFilesCleanedup``.
"""

from __future__ import annotations

from ..domain import clock
from ..protocol import RemoveTaskDirCommand
from ..store import subtask_queries
from ..store.engine import Connection
from ..store.records import NODES, TASKS, Record
from ..store.task_queries import tasks_to_clean
from .context import ServiceContext

BATCH = 500


def remove_task_directory(ctx: ServiceContext, conn: Connection, task: Record) -> None:
    """Tell the task's node to delete its directory (after commit) and remember it is gone."""
    node_pk = task.row.get("node_pk")
    node_info = task.body.get("nodeInfo")
    if node_pk is None or not node_info:
        return
    directory = node_info.get("taskRootDirectory", "")
    for pk in [node_pk, *_subtask_nodes(conn, task)]:   # (a multi-instance task's directory is on every node)
        node = NODES.get_by_pk(conn, pk)
        if node is not None:
            ctx.send(conn, node.row["agent_id"], [RemoveTaskDirCommand(nodeId=node.body["id"], taskDir=directory)])
    TASKS.set_columns(conn, task.pk, files_removed=True)


def _subtask_nodes(conn: Connection, task: Record) -> list[int]:
    if "multiInstanceSettings" not in task.body:
        return []
    return sorted({row.node_pk for row in subtask_queries.of_task(conn, task.pk)
                   if row.instance > 0 and row.node_pk is not None} - {task.row.get("node_pk")})


class Retention:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def remove_expired(self) -> int:
        now = clock.naive(self.ctx.now())
        with self.ctx.store.write() as conn:
            due = tasks_to_clean(conn, now, BATCH)
            for task in due:
                remove_task_directory(self.ctx, conn, task)
        return len(due)
