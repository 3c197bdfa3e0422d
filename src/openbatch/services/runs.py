"""Reports from agents: a run exited. One transaction per batch of reports.

Run ids say what ran (``t-`` task, ``p-`` job preparation, ``r-`` job release, ``s-``
start task) and are stored with what they ran, so a report for a run that is no longer
current (the task was terminated, requeued, the node removed) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Sequence

from ..domain import clock, commands, execution, nodes as node_rules
from ..domain.nodes import NodeState
from ..domain.states import TaskState, with_state
from ..protocol import Command
from ..store import task_queries
from ..store.engine import Connection
from ..store.node_queries import node_by_start_run
from ..store.records import JOBS, NODES, POOLS, PREP_RELEASE, TASKS, Record
from . import reservations, transitions
from .calls import bounded_write
from .context import ServiceContext
from .instances import InstanceService
from .jobs import JobService

Json = dict[str, Any]


def _finished_info(info: Json, result: Json, now: datetime) -> Json:
    """Execution info of a preparation/release/start task whose run completed (at the node's times)."""
    done = {**info, "state": "completed"}
    done["endTime"] = execution.with_run_times(done, result.get("startTime"), result.get("endTime"), now)
    if result.get("containerInfo"):
        done["containerInfo"] = result["containerInfo"]
    code = result.get("exitCode")
    if code is not None:
        done["exitCode"] = code
    success = code == 0 and not result.get("failure")
    done["result"] = "success" if success else "failure"
    if not success:
        done["failureInfo"] = result.get("failure") or {
            "category": "usererror", "code": "FailureExitCode",
            "message": "The task exited with an exit code representing a failure",
            "details": [{"name": "Message", "value": f"The task exited with exit code {code}"}]}
    else:
        done.pop("failureInfo", None)
    return done


def _retry_info(info: Json, now: datetime) -> Json:
    stamp = clock.to_wire(now)
    return {**info, "state": "running", "startTime": stamp, "retryCount": info.get("retryCount", 0) + 1,
            "lastRetryTime": stamp}


def _is_task_exit(result: Json) -> bool:
    """A task run's exit (not a preparation's, release's, start task's, subtask's, nor a coordination)."""
    return str(result.get("id", ""))[:1] == "t" and result.get("type") != "coordinated"


class RunService:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.instances = InstanceService(ctx, jobs)

    @bounded_write
    def report(self, agent_id: str, results: Sequence[Json], sent_at: str | None = None,
               answered: bool = False) -> list[Command]:
        """Apply finished runs ({id, exitCode, failure?, preProcessingError?, startTime, endTime}) in one
        transaction, with the reserved runs that started (``started``: {id, startTime}; an exit with
        ``reserved`` may be its run's first word) or were dropped (``unreserved``). The times are the
        node's, put on the server's clock (``sent_at``: the node's clock when it sent the report; see
        :func:`execution.node_times`).

        Reports are applied in the order they came; a run of consecutive task reports is
        applied as one batch (:meth:`_tasks`). The pools where task slots came free get a
        scheduling round in the same transaction; the scheduler is woken only for what
        that round may not have covered (other reports, a round that left room).

        ``answered``: the agent takes commands in the answer to its report; then the commands the
        transaction decided for it are returned (for that answer, once committed) instead of sent.
        """
        now = self.ctx.now()
        offset = execution.clock_offset(sent_at, now)
        for result in results:
            result["startTime"], result["endTime"] = execution.node_times(result, now, offset)
        with self.ctx.store.write() as conn, self.ctx.answering(conn, agent_id if answered else "") as answer:
            # reserved runs first: a run's start is applied before its exit, and before any slot it took counts free
            starts = [result for result in results if result.get("type") == "started" or result.get("reserved")]
            # (a run that starts and ends in this report is stored once, at its end, unless other reports
            # come before that end in it: a preparation, a subtask... may change the task or its job meanwhile)
            merge = all(_is_task_exit(result) for result in results
                        if result.get("type") not in ("started", "unreserved"))
            started = reservations.start(self.ctx, conn, agent_id, starts, now, merge_exits=merge) if starts else {}
            dropped = [str(result.get("id")) for result in results
                       if result.get("type") == "unreserved" and str(result.get("id")) not in started]
            if dropped:
                reservations.unreserved(self.ctx, conn, dropped)
            results = [result for result in results if result.get("type") not in ("started", "unreserved")]
            tasks: list[Json] = []
            freed: set[tuple[str, str]] = set()
            emptied: set[int] = set()   # nodes whose last task left: settled after the rounds
            wake = False
            for result in results:
                run_id = str(result.get("id", ""))
                coordinated = result.get("type") == "coordinated"
                if _is_task_exit(result):
                    tasks.append(result)
                    continue
                freed |= self._tasks(conn, agent_id, tasks, now, emptied, started)
                transitions.settle_nodes(conn, emptied, now)
                emptied.clear()
                tasks = []
                handler = self.instances.coordinated if coordinated else {
                    "p": self._preparation, "r": self._release, "s": self._start,
                    "m": self.instances.subtask_exited}.get(run_id[:1])
                if handler is not None:
                    handler(conn, agent_id, run_id, result, now)
                    wake = True
            freed |= self._tasks(conn, agent_id, tasks, now, emptied, started)
            for account, pool_key in sorted(freed):
                wake = self.ctx.schedule_in(conn, account, pool_key).more or wake
            transitions.settle_nodes(conn, emptied, now)
            if wake or (not freed and results):   # (reserved runs' words alone wake where they need to)
                self.ctx.wake_after(conn)
        return answer

    # -- tasks -----------------------------------------------------------------------------

    def _tasks(self, conn: Connection, agent_id: str, results: list[Json], now: datetime,
               emptied: set[int], started: dict[str, reservations.StartedRun]) -> set[tuple[str, str]]:
        """Finished task runs as a batch: one read of the tasks and of their jobs, batched writes.

        Returns the (account, pool key) of the nodes whose slots came free; the nodes left
        without a task go into ``emptied``, their state for the caller to settle
        (:func:`transitions.settle_nodes`) after its scheduling rounds.

        ``started``: reserved runs whose start came in this report, not stored yet (by run id,
        :func:`reservations.start`); their task is stored once, ended.

        Jobs whose failed tasks may end or disable the job (onTaskFailure=
        performexitoptionsjobaction) take their reports one by one, in order (:meth:`_task`).
        """
        if not results:
            return set()
        run_ids = list(dict.fromkeys(str(result["id"]) for result in results if str(result["id"]) not in started))
        by_run = task_queries.task_rows_by_run(conn, run_ids) if run_ids else {}
        jobs = {run.job.pk: run.job for run in started.values()}
        wanted = {row.job_pk for row in by_run.values()} - jobs.keys()
        if wanted:
            jobs.update(task_queries.jobs_by_pk(conn, wanted))
        changes: list[transitions.TaskChange] = []
        departures: dict[int, transitions.Departures] = defaultdict(transitions.Departures)
        one_by_one: list[Json] = []
        for result in results:
            run = started.pop(str(result["id"]), None)
            if run is not None:   # started and ended in this report: from active to its end at once
                body = execution.from_result(run.running, result, now)
                completed = body["state"] == TaskState.COMPLETED
                changes.append(transitions.TaskChange(run.job.pk, run.task, body, {
                    "run_id": None, "node_pk": run.node_pk if completed else None, **reservations.CLEARED},
                    via=run.running))
                if run.node_pk is not None:
                    departures[run.node_pk].add(body["requiredSlots"], ran=True, held=False,
                                                succeeded=body["executionInfo"].get("result") == "success")
                continue
            row = by_run.pop(str(result["id"]), None)   # a run reported twice counts once
            job = jobs.get(row.job_pk) if row is not None else None
            if row is None or job is None:
                continue
            if job.body.get("onTaskFailure") == "performexitoptionsjobaction":
                one_by_one.append(result)
                continue
            task = TASKS.record(row)
            if task.body["state"] != TaskState.RUNNING:
                continue
            body = execution.from_result(task.body, result, now)
            completed = body["state"] == TaskState.COMPLETED
            changes.append(transitions.TaskChange(job.pk, task, body,
                                                  {"run_id": None, "node_pk": row.node_pk if completed else None}))
            if row.node_pk is not None:
                departures[row.node_pk].add(body["requiredSlots"], ran=True,
                                            succeeded=body["executionInfo"].get("result") == "success")
        transitions.apply_many(conn, changes, now)
        for change in changes:   # (a multi-instance task's subtasks end with its primary)
            if "multiInstanceSettings" in change.body:
                transitions.end_subtasks(self.ctx, conn, change.task.pk, now)
        freed = set()
        for node in transitions.vacate_nodes(conn, departures, now, emptied):
            transitions.after_vacated(self.ctx, conn, node, now)
            freed.add((node.row["account"], node.row["pool_id_key"]))
        for job_pk in sorted({change.job_pk for change in changes}):   # only their counters changed
            self.jobs.after_tasks_changed(conn, jobs[job_pk])
        for result in one_by_one:
            self._task(conn, agent_id, str(result["id"]), result, now)
        return freed

    def _task(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        task = task_queries.task_by_run(conn, run_id)
        if task is None:
            return
        row_node_pk = task.row["node_pk"]
        job = JOBS.get_by_pk(conn, task.row["job_pk"], for_update=True)
        if job is None or task.body["state"] != TaskState.RUNNING:
            return
        body = execution.from_result(task.body, result, now)
        task = transitions.apply(conn, job, task, body, now)
        TASKS.set_columns(conn, task.pk, run_id=None, node_pk=row_node_pk if body["state"] == "completed" else None)
        if "multiInstanceSettings" in body:
            transitions.end_subtasks(self.ctx, conn, task.pk, now)
        succeeded = body["executionInfo"].get("result") == "success"
        node = transitions.vacate_node(conn, row_node_pk, body["requiredSlots"], now, ran=True, succeeded=succeeded)
        if node is not None:
            transitions.after_vacated(self.ctx, conn, node, now)
        if body["state"] == TaskState.COMPLETED.value:
            self.jobs.take_exit_action(conn, job, body)
        self.jobs.after_tasks_changed(conn, JOBS.get_by_pk(conn, job.pk) or job)

    # -- job preparation and release -------------------------------------------------------

    def _preparation(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        row = task_queries.prep_row_by_run(conn, "prep", run_id)
        if row is None:
            return
        job = JOBS.get_by_pk(conn, row.row["job_pk"], for_update=True)
        node = NODES.get_by_pk(conn, row.row["node_pk"], for_update=True) if row.row["node_pk"] else None
        if job is None:
            return
        prep = job.body["jobPreparationTask"]
        info = row.body["jobPreparationTaskExecutionInfo"]
        done = _finished_info(info, result, now)
        retries = prep.get("constraints", {}).get("maxTaskRetryCount", 0)
        can_retry = not result.get("preProcessingError") and result.get("exitCode") is not None
        if done["result"] == "failure" and can_retry and node is not None and (
                retries == -1 or info.get("retryCount", 0) < retries):
            new_run = commands.new_run_id("p")
            retry = _retry_info(info, now)
            PREP_RELEASE.update(conn, row, {**row.body, "jobPreparationTaskExecutionInfo": retry}, now,
                                extra={"prep_run_id": new_run})
            who = self._identity(conn, job, node)
            self.ctx.send(conn, node.row["agent_id"],
                          [commands.preparation_command(new_run, who, job.body, retry["retryCount"])])
            return
        PREP_RELEASE.update(conn, row, {**row.body, "jobPreparationTaskExecutionInfo": done}, now,
                            extra={"prep_run_id": None})
        if node is not None:
            self._after_preparation(conn, job, node, done["result"] == "success", now)
        self.jobs.settle_in(conn, job)

    def _after_preparation(self, conn: Connection, job: Record, node: Record, success: bool, now: datetime) -> None:
        """Tasks waiting on this node for the preparation: run them, or send them back to the queue."""
        out = []
        for task in task_queries.tasks_preparing_on(conn, job.pk, node.pk):
            if success and job.body["state"] == "active":
                run_id = commands.new_run_id("t")
                task = transitions.apply(conn, job, task, execution.running(task.body, now), now)
                TASKS.set_columns(conn, task.pk, run_id=run_id)
                token = self.ctx.task_token(job.row["account"], job.body, task.body)
                out.append(commands.task_command(run_id, self._identity(conn, job, node), job.body, task.body, token))
            else:
                transitions.apply(conn, job, task, with_state(task.body, TaskState.ACTIVE, now), now)
                TASKS.set_columns(conn, task.pk, run_id=None, node_pk=None)
                transitions.vacate_node(conn, node.pk, task.body["requiredSlots"], now, ran=False, succeeded=False)
        self.ctx.send(conn, node.row["agent_id"], out)

    def _release(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        row = task_queries.prep_row_by_run(conn, "release", run_id)
        if row is None:
            return
        info = row.body.get("jobReleaseTaskExecutionInfo", {})
        done = _finished_info(info, result, now)
        done.pop("retryCount", None)
        PREP_RELEASE.update(conn, row, {**row.body, "jobReleaseTaskExecutionInfo": done}, now,
                            extra={"release_run_id": None})
        job = JOBS.get_by_pk(conn, row.row["job_pk"], for_update=True)
        if job is not None:
            self.jobs.settle_in(conn, job)

    def _identity(self, conn: Connection, job: Record, node: Record) -> commands.Identity:
        account = job.row["account"]
        pool = POOLS.get(conn, (account,), (node.row["pool_id_key"],))
        return commands.Identity(account, self.ctx.account_url(account), pool.body["id"] if pool else "",
                                 node.body["id"], pool.body if pool else None)

    # -- start tasks -----------------------------------------------------------------------

    def _start(self, conn: Connection, agent_id: str, run_id: str, result: Json, now: datetime) -> None:
        node = node_by_start_run(conn, run_id)
        if node is None:
            return
        start = node.body.get("startTask", {})
        info = node.body.get("startTaskInfo", {})
        done = _finished_info(info, result, now)
        retries = start.get("maxTaskRetryCount", 0)
        body = dict(node.body)
        if done["result"] == "failure" and result.get("exitCode") is not None and (
                retries == -1 or info.get("retryCount", 0) < retries):
            new_run = commands.new_run_id("s")
            body["startTaskInfo"] = _retry_info(info, now)
            NODES.update(conn, node, body, now, extra={"start_run_id": new_run})
            account = node.row["account"]
            pool = POOLS.get(conn, (account,), (node.row["pool_id_key"],))
            who = commands.Identity(account, self.ctx.account_url(account), pool.body["id"] if pool else "",
                                    node.body["id"], pool.body if pool else None)
            self.ctx.send(conn, agent_id, [commands.start_task_command(new_run, who, start,
                                                                       body["startTaskInfo"]["retryCount"])])
            return
        body["startTaskInfo"] = done
        if body["state"] == NodeState.WAITING_FOR_START_TASK.value:
            state = NodeState.IDLE if done["result"] == "success" else NodeState.START_TASK_FAILED
            body = node_rules.with_state(body, state, now)
        NODES.update(conn, node, body, now, extra={"start_run_id": None})
