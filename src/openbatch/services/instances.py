"""Reports of the instances of multi-instance tasks (domain/multi_instance.py): coordination done, and a
subtask that ended by itself (it failed).

A subtask's run id starts with ``m-``; the primary's is the task's own (``t-``). Reports for runs that
are no longer current change nothing, as for any run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain import commands, multi_instance
from ..domain.states import TaskState
from ..store import subtask_queries, task_queries
from ..store.engine import Connection
from ..store.records import JOBS, NODES, TASKS, Record
from . import transitions
from .context import ServiceContext
from .jobs import JobService

Json = dict[str, Any]


class InstanceService:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs

    def coordinated(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        """An instance's coordination command succeeded; once every instance's has, the primary runs the
        task's command."""
        if run_id.startswith("m"):
            subtask = subtask_queries.by_run(conn, run_id)
            if subtask is None:
                return
            task = TASKS.get_by_pk(conn, subtask.task_pk, for_update=True)
        else:
            task = task_queries.task_by_run(conn, run_id)
            if task is None:
                return
            subtask = next((row for row in subtask_queries.of_task(conn, task.pk, for_update=True)
                            if row.instance == 0), None)
        if task is None or subtask is None or task.body["state"] != TaskState.RUNNING:
            return
        if not subtask.coordinated:   # (a report sent again: its answer, with the proceed, may have been lost)
            subtask.coordinated = True
            start = result.get("startTime")
            if subtask.instance and start and start > subtask.body.get("startTime", ""):
                subtask.body = {**subtask.body, "startTime": start}
            subtask_queries.save(conn, subtask)
        proceed_if_coordinated(self.ctx, conn, task)

    def subtask_exited(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        """A subtask's run ended by itself: its coordination failed (or could not start). The whole task
        fails: it is stopped everywhere and retried up to its maxTaskRetryCount."""
        subtask = subtask_queries.by_run(conn, run_id)
        if subtask is None:
            return
        task = TASKS.get_by_pk(conn, subtask.task_pk, for_update=True)
        job = JOBS.get_by_pk(conn, task.row["job_pk"], for_update=True) if task is not None else None
        code = result.get("exitCode")
        subtask.body = multi_instance.subtask_completed(
            subtask.body, now, exit_code=code, failure=result.get("failure"), start=result.get("startTime"),
            end=result.get("endTime"))
        subtask.run_id = None
        subtask_queries.save(conn, subtask)
        if subtask.node_pk is not None:
            node = transitions.vacate_node(conn, subtask.node_pk, 1, now, ran=True, succeeded=False)
            if node is not None:
                transitions.after_vacated(self.ctx, conn, node, now)
        if task is None or job is None or task.body["state"] != TaskState.RUNNING:
            return
        body = multi_instance.failed_by_subtask(task.body, subtask.instance, result, now)
        transitions.stop_on_node(self.ctx, conn, job, task, body, now)
        if body["state"] == TaskState.COMPLETED.value:
            self.jobs.take_exit_action(conn, job, body)
        self.jobs.after_tasks_changed(conn, JOBS.get_by_pk(conn, job.pk) or job)
        self.jobs.settle_in(conn, job)


def proceed_if_coordinated(ctx: ServiceContext, conn: Connection, task: Record) -> None:
    """Tell the primary of a running multi-instance task to run its command once every instance coordinated
    (again, if need be: the agent takes a proceed it already had as a no-op)."""
    instances = subtask_queries.of_task(conn, task.pk)
    if task.body["state"] != TaskState.RUNNING or len(instances) != multi_instance.instances(task.body) \
            or not all(row.coordinated for row in instances):
        return
    node = NODES.get_by_pk(conn, task.row["node_pk"]) if task.row["node_pk"] is not None else None
    if node is not None and task.row["run_id"]:
        ctx.send(conn, node.row["agent_id"], [commands.proceed_command(task.row["run_id"])])
