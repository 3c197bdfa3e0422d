"""Job use cases, one transaction each."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping, Protocol


from ..domain import auto_pools, clock, job_manager, commands, counts, execution, jobs as rules, tasks as task_rules
from ..domain.conditions import NONE, Conditions, check
from ..domain.errors import BatchError, not_found
from ..domain.exit_conditions import options_for
from ..domain.quotas import check_job_quota
from ..domain.models import (
    JobAddParameter,
    JobDisableParameter,
    JobPatchParameter,
    JobTerminateParameter,
    JobUpdateParameter,
    PoolAddParameter,
)
from ..domain.states import JobState, TaskState, check_job_action
from ..store import task_queries
from ..store.job_schedule_queries import active_schedules
from ..store.engine import Connection
from ..store.records import (JOBS, POOLS, PREP_RELEASE, TASKS, Record, counters_by_id, counters_by_id_on_loop,
                             read_counters)
from . import auto_storage, events, reservations, transitions
from .calls import point_read
from .context import ListQuery, Page, ServiceContext, id_key, page_of, require_job


class PoolLifecycle(Protocol):
    """What jobs need of the pool use cases (services/pools.py) for their auto pools."""

    def add_in(self, conn: Connection, account: str, pool: PoolAddParameter) -> Record: ...

    def delete_in(self, conn: Connection, account: str, record: Record) -> None: ...

Json = dict[str, Any]


class JobService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        #: Creates and deletes the jobs' auto pools; set by ``Services.create`` (pools need jobs first).
        self.pools: PoolLifecycle | None = None
        #: A job a job schedule created completed or is gone (in the caller's transaction): the schedule
        #: moves on. Installed by the job schedule use cases (job_schedules.py), which own it.
        self.on_job_ended: Callable[[Connection, Record], None] = lambda conn, record: None

    # -- create and read -------------------------------------------------------------------

    def add(self, account: str, job: JobAddParameter) -> Record:
        rules.validate_new_job(job)
        auto_storage.check_configured(self.ctx.auto_storage, job, auto_storage.JOB_NEEDS)
        with self.ctx.store.write() as conn:
            if JOBS.get(conn, (account,), (job.id,)) is not None:
                raise BatchError("JobExists", "The specified job already exists.", [("JobId", job.id)])
            check_job_quota(self.ctx.quotas, active_jobs(conn, account) + active_schedules(conn, account))
            return self.add_in(conn, account, job)

    def add_in(self, conn: Connection, account: str, job: JobAddParameter, *, schedule_key: str | None = None,
               pool_id: str | None = None) -> Record:
        """Add a checked job in the caller's transaction. ``schedule_key``: the job schedule creating
        it; ``pool_id``: the auto pool the schedule's jobs share (poolLifetimeOption jobschedule)."""
        now = self.ctx.now()
        body = rules.new_job_body(job, now)
        spec = auto_pools.auto_pool_spec(body)
        if pool_id is not None:
            body["executionInfo"]["poolId"] = pool_id
        elif spec is not None:
            self._create_auto_pool(conn, account, spec, body)
        record = JOBS.insert(conn, (account,), body, now,
                             extra={"job_schedule_key": schedule_key} if schedule_key else None)
        if job.jobManagerTask is not None:
            self._add_job_manager(conn, record, job, now)
        events.job(conn, job.id, "added (pool %s)", body["executionInfo"].get("poolId") or "auto")
        return self.after_tasks_changed(conn, record)

    def _add_job_manager(self, conn: Connection, record: Record, job: JobAddParameter, now: datetime) -> None:
        """The job manager is the job's first task; run exclusively, it takes all of its node's slots."""
        body = task_rules.new_task_body(job_manager.manager_task(job), record.body, now)
        pool_id = record.body["executionInfo"].get("poolId")
        pool = POOLS.get(conn, (record.row["account"],), (pool_id,)) if pool_id else None
        pool_slots = pool.body.get("taskSlotsPerNode", 1) if pool is not None else None
        body["requiredSlots"] = job_manager.exclusive_slots(record.body, body, pool_slots)
        transitions.insert_tasks(conn, record, [body], now)
        self.ctx.wake_after(conn)

    def _create_auto_pool(self, conn: Connection, account: str, spec: Json, body: Json) -> None:
        """The job's own pool, named in its executionInfo; a pool the account cannot have (quota) is the
        job's schedulingError instead (the job is added: its tasks wait, and it says why)."""
        assert self.pools is not None, "Services.create wires the pools"
        pool_id = auto_pools.new_pool_id(spec)
        try:   # add_in refuses before it writes anything
            self.pools.add_in(conn, account, auto_pools.pool_parameter(spec, pool_id))
        except BatchError as error:
            body["executionInfo"]["schedulingError"] = auto_pools.creation_failed(error)
            return
        body["executionInfo"]["poolId"] = pool_id

    def _delete_auto_pool(self, conn: Connection, record: Record) -> None:
        """The job ended: its auto pool goes with it (poolLifetimeOption job, not keepAlive)."""
        pool_id = auto_pools.pool_to_delete(record.body)
        if pool_id is None or self.pools is None:
            return
        account = record.row["account"]
        pool = POOLS.get(conn, (account,), (pool_id,), for_update=True)
        if pool is not None and pool.body["state"] != "deleting":
            self.pools.delete_in(conn, account, pool)

    def get(self, account: str, job_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.read() as conn:
            record = require_job(conn, account, job_id)
        check(conditions, record.etag, record.last_modified, read=True)
        return record

    def list(self, account: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            records = JOBS.page(conn, (account,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    @point_read
    def task_counts(self, account: str, job_id: str) -> Json:
        """Exact and O(1): the counters move in the same transaction as every task transition."""
        with self.ctx.store.read_statement() as conn:
            row = counters_by_id(conn, account, job_id)
        return _task_counts_answer(row, job_id)

    async def task_counts_on_loop(self, account: str, job_id: str) -> Json:
        """:meth:`task_counts` on the event loop, where the store reads there (PostgreSQL)."""
        assert self.ctx.store.loop_reads is not None
        return _task_counts_answer(await counters_by_id_on_loop(self.ctx.store.loop_reads, account, job_id), job_id)

    # -- changes ---------------------------------------------------------------------------

    def patch(self, account: str, job_id: str, patch: JobPatchParameter, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, job_id, conditions, "update")
            before = record.body.get("priority", 0)
            record = JOBS.update(conn, record, rules.patched_body(record.body, patch), self.ctx.now())
            self._limits_changed(conn, record, before)
            self.ctx.wake_after(conn)  # priority, maxParallelTasks or pool may let tasks run
            return self.after_tasks_changed(conn, record)

    def update(self, account: str, job_id: str, update: JobUpdateParameter, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, job_id, conditions, "update")
            before = record.body.get("priority", 0)
            record = JOBS.update(conn, record, rules.updated_body(record.body, update), self.ctx.now())
            self._limits_changed(conn, record, before)
            self.ctx.wake_after(conn)
            return self.after_tasks_changed(conn, record)

    def disable(self, account: str, job_id: str, params: JobDisableParameter, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, job_id, conditions, "disable")
            if record.body["state"] == JobState.DISABLED.value:
                return record  # already disabled: no transition (previousState and times stay)
            return self.disable_in(conn, record, params.disableTasks)

    def disable_in(self, conn: Connection, record: Record, option: str) -> Record:
        """Disable: running tasks are requeued, terminated, or (wait) left to finish."""
        now = self.ctx.now()
        reservations.cancel_job(self.ctx, conn, record.pk)
        record = JOBS.update(conn, record, rules.with_state(record.body, JobState.DISABLING, now), now)
        if option in ("requeue", "terminate"):
            for task in self._on_nodes(conn, record):
                body = execution.requeued(task.body, now) if option == "requeue" else task_rules.terminated(task.body, now)
                transitions.stop_on_node(self.ctx, conn, record, task, body, now)
        return self._settle(conn, record)

    def enable(self, account: str, job_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, job_id, conditions, "enable")
            if record.body["state"] == JobState.ACTIVE.value:
                return record  # already active: no transition (a new job keeps no previousState)
            now = self.ctx.now()
            record = JOBS.update(conn, record, rules.with_state(record.body, JobState.ENABLING, now), now)
            self.ctx.wake_after(conn)  # its active tasks may run now
            record = self._settle(conn, record)
            reservations.yield_to(self.ctx, conn, record)
            return record

    def terminate(
        self, account: str, job_id: str, params: JobTerminateParameter | None, conditions: Conditions = NONE
    ) -> Record:
        reason = (params.terminateReason if params else None) or "UserTerminate"
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, job_id, conditions, "terminate")
            return self.terminate_in(conn, record, reason)

    def delete(self, account: str, job_id: str, conditions: Conditions = NONE) -> None:
        with self.ctx.store.write() as conn:
            self.delete_in(conn, self._locked(conn, account, job_id, conditions, "delete"))

    def delete_in(self, conn: Connection, record: Record) -> None:
        """Delete a job (locked, not deleting yet): its running tasks end, release tasks run, then it goes."""
        now = self.ctx.now()
        reservations.cancel_job(self.ctx, conn, record.pk)
        record = JOBS.update(conn, record, rules.with_state(record.body, JobState.DELETING, now), now)
        events.job(conn, record.body["id"], "deleting")
        self._stop_running(conn, record, now)
        self._settle(conn, record)

    # -- internals -------------------------------------------------------------------------

    def _locked(self, conn: Connection, account: str, job_id: str, conditions: Conditions, action: str) -> Record:
        record = require_job(conn, account, job_id, for_update=True)
        check(conditions, record.etag, record.last_modified, read=False)
        check_job_action(action, JobState(record.body["state"]))
        return record

    def take_exit_action(self, conn: Connection, job: Record, task: Json) -> None:
        """onTaskFailure=performexitoptionsjobaction: a completed task's exit options may end or disable its job."""
        if job.body.get("onTaskFailure") != "performexitoptionsjobaction":
            return
        action = options_for(task)["jobAction"]
        current = JOBS.get_by_pk(conn, job.pk, for_update=True)
        if current is None or current.body["state"] != "active":
            return
        if action == "terminate":
            self.terminate_in(conn, current, "TaskFailed")
        elif action == "disable":
            self.disable_in(conn, current, "requeue")

    def terminate_in(self, conn: Connection, record: Record, reason: str) -> Record:
        """Terminate: running tasks are ended, release tasks run, then the job completes."""
        now = self.ctx.now()
        reservations.cancel_job(self.ctx, conn, record.pk)
        body = rules.with_state(record.body, JobState.TERMINATING, now)
        body.setdefault("executionInfo", {})["terminateReason"] = reason
        record = JOBS.update(conn, record, body, now)
        events.job(conn, record.body["id"], "terminating (%s)", reason)
        self._stop_running(conn, record, now)
        return self._settle(conn, record)

    def _limits_changed(self, conn: Connection, record: Record, priority_before: int) -> None:
        """A job that now has a maxParallelTasks takes no reservations (their starts would not count it);
        one whose priority changed gives its own up (jobs that outrank it now may come first) and goes
        before the reservations of those it now outranks."""
        reprioritised = record.body.get("priority", 0) != priority_before
        if reprioritised or record.body.get("maxParallelTasks", -1) not in (None, -1):
            reservations.cancel_job(self.ctx, conn, record.pk)
        if reprioritised:
            reservations.yield_to(self.ctx, conn, record)

    def _on_nodes(self, conn: Connection, record: Record) -> list[Record]:
        return task_queries.tasks_of_job_on_nodes(conn, record.pk)

    def _stop_running(self, conn: Connection, record: Record, now: datetime) -> None:
        for task in self._on_nodes(conn, record):
            transitions.stop_on_node(self.ctx, conn, record, task, task_rules.terminated(task.body, now), now)

    def after_tasks_changed(self, conn: Connection, record: Record) -> Record:
        """A completed job manager with killJobOnCompletion ends its job (JMComplete);
        onAllTasksComplete=terminatejob ends an active job whose tasks are all complete;
        a job ``disabling`` with disableTasks=wait becomes ``disabled`` when its last running task ends.

        Called in the transaction of every change that may complete the last task.
        """
        body = record.body
        if body["state"] == JobState.ACTIVE and job_manager.kills_job(body):
            manager = TASKS.get(conn, (record.pk,), (body["jobManagerTask"]["id"],))
            if manager is not None and manager.body["state"] == TaskState.COMPLETED:
                return self.terminate_in(conn, record, "JMComplete")
        if body["state"] == JobState.ACTIVE and body.get("onAllTasksComplete") == "terminatejob":
            row = read_counters(conn, record.pk)
            if row["task_active"] == 0 and row["task_running"] == 0:
                return self.terminate_in(conn, record, "AllTasksComplete")
        if body["state"] == JobState.DISABLING:
            return self._settle(conn, record)
        return record

    def _settle(self, conn: Connection, record: Record) -> Record:
        """Finish a transitional state once nothing is left to wait for.

        disabling -> disabled and enabling -> active happen at once while no task
        runs; terminating -> completed and deleting -> gone wait for the job
        release tasks still due on nodes (run by the execution layer).
        """
        state = JobState(record.body["state"])
        now = self.ctx.now()
        running = read_counters(conn, record.pk)["task_running"]
        if state is JobState.DISABLING and running == 0:
            events.job(conn, record.body["id"], "disabled")
            return JOBS.update(conn, record, rules.with_state(record.body, JobState.DISABLED, now), now)
        if state is JobState.ENABLING:
            return self.after_tasks_changed(conn, JOBS.update(conn, record, rules.with_state(record.body, JobState.ACTIVE, now), now))
        if state in (JobState.TERMINATING, JobState.DELETING):
            self._start_releases(conn, record, now)
        if state in (JobState.TERMINATING, JobState.DELETING) and running == 0 and not self._release_due(conn, record):
            self._delete_auto_pool(conn, record)
            if state is JobState.DELETING:
                JOBS.delete(conn, record.pk)
                events.job(conn, record.body["id"], "deleted")
            else:
                reason = record.body.get("executionInfo", {}).get("terminateReason", "UserTerminate")
                record = JOBS.update(conn, record, rules.completed(record.body, reason, now), now)
                events.job(conn, record.body["id"], "completed (%s)", reason)
            if record.row.get("job_schedule_key"):
                self.on_job_ended(conn, record)
        return record

    def _release_due(self, conn: Connection, record: Record) -> bool:
        """Whether a node that ran the preparation task still owes its release task."""
        if "jobReleaseTask" not in record.body:
            return False
        return task_queries.release_due(conn, record.pk)

    def _start_releases(self, conn: Connection, record: Record, now: datetime) -> None:
        """Start the release task on each node that completed the preparation and has not released yet.

        A job terminated before it is deleted does not run its release tasks twice.
        """
        if "jobReleaseTask" not in record.body:
            return
        account = record.row["account"]
        release = record.body["jobReleaseTask"]
        for prep_row, agent_id in task_queries.releases_to_start(conn, record.pk):
            run_id = commands.new_run_id("r")
            info = commands.execution_info("running", clock.to_wire(now), 0,
                                           commands.task_dir(record.body["id"], release["id"]))
            info.pop("retryCount")
            PREP_RELEASE.update(conn, prep_row, {**prep_row.body, "jobReleaseTaskExecutionInfo": info}, now,
                                extra={"release_run_id": run_id})
            pool = POOLS.get(conn, (account,), (prep_row.body["poolId"],))
            who = commands.Identity(account, self.ctx.account_url(account), prep_row.body["poolId"],
                                    prep_row.body["nodeId"], pool.body if pool else None)
            self.ctx.send(conn, agent_id, [commands.release_command(run_id, who, record.body)])

    def settle_in(self, conn: Connection, record: Record) -> Record:
        """Re-check a job's transitional state inside the caller's transaction."""
        return self._settle(conn, record)


def active_jobs(conn: Connection, account: str) -> int:
    """The account's jobs that count against its quota: every job not yet completed."""
    return task_queries.count_jobs(conn, account, except_states=["completed", "deleting"])


def _task_counts_answer(row: Mapping[str, int] | None, job_id: str) -> Json:
    if row is None:
        raise not_found("JobNotFound", "job", job_id)
    return counts.to_wire(row)
