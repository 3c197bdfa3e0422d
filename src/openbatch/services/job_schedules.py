"""Job schedule use cases, one transaction each, and the step that starts their jobs on time.

A schedule moves on (:meth:`JobScheduleService._advance`) in the transaction of whatever may
change what it does next: its own add, change, enable, terminate or delete; one of its jobs
completing or going (JobService calls :meth:`job_ended`); and the clock, when its next run time
or the window of a waiting run comes (:meth:`run_due`, called by the server's timer). The rule
itself is pure (domain/job_schedules.py); the schedule's row is locked while it is applied, so
however many servers look, an occurrence starts one job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..domain import clock, job_schedules as rules, stats
from ..domain.conditions import NONE, Conditions, check
from ..domain.errors import BatchError, not_found
from ..domain.job_schedules import ScheduleState
from ..domain.models import JobScheduleAddParameter, JobSchedulePatchParameter, JobScheduleUpdateParameter
from ..domain.quotas import check_job_quota
from ..store import job_schedule_queries as queries
from ..store.engine import Connection
from ..store.records import JOB_SCHEDULES, JOBS, POOLS, SCHEDULED_JOBS, Record
from . import auto_storage
from .context import ListQuery, Page, ServiceContext, id_key, page_of
from .jobs import JobService, active_jobs

#: Job states that no longer hold the schedule's next job back.
_ENDED = ("completed", "deleting")
#: When the timer tries again a schedule whose job could not be started (logged).
RETRY_AFTER = timedelta(minutes=1)

log = logging.getLogger("openbatch.job_schedules")


class JobScheduleService:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs
        jobs.on_job_ended = self.job_ended

    # -- create and read -------------------------------------------------------------------

    def add(self, account: str, param: JobScheduleAddParameter) -> Record:
        rules.validate_new_schedule(param, self.ctx.intervals.schedule_minimum)
        auto_storage.check_configured(self.ctx.auto_storage, param.jobSpecification, auto_storage.JOB_NEEDS)
        now = self.ctx.now()
        body = rules.new_schedule_body(param, now)
        with self.ctx.store.write() as conn:
            if JOB_SCHEDULES.get(conn, (account,), (param.id,)) is not None:
                raise BatchError("JobScheduleExists", "The specified job schedule already exists.",
                                 [("JobScheduleId", param.id)])
            check_job_quota(self.ctx.quotas, active_jobs(conn, account) + queries.active_schedules(conn, account))
            record = JOB_SCHEDULES.insert(conn, (account,), body, now,
                                          extra={"origin": clock.naive(rules.origin(body, now)), "next_index": 0,
                                                 "jobs_created": 0})
            return self._advance(conn, record, now)

    def get(self, account: str, schedule_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.read() as conn:
            record = _require(conn, account, schedule_id)
        check(conditions, record.etag, record.last_modified, read=True)
        return record

    def list(self, account: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            records = JOB_SCHEDULES.page(conn, (account,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    def jobs_of(self, account: str, schedule_id: str, query: ListQuery) -> Page:
        """Job_ListFromJobSchedule: the jobs the schedule created that still exist."""
        with self.ctx.store.read() as conn:
            _require(conn, account, schedule_id)
            records = SCHEDULED_JOBS.page(conn, (account, schedule_id.lower()), query.filter, query.after,
                                          query.limit + 1)
        return page_of(records, query.limit, id_key)

    def stats(self, record: Record, url: str) -> dict:
        """JobScheduleStatistics: the tasks of its jobs that still exist (CPU and I/O are not metered)."""
        with self.ctx.store.read() as conn:
            succeeded, failed = queries.task_totals(conn, record.row["account"], record.row["id_key"])
        return stats.job_stats(url, record.body["creationTime"], clock.to_wire(self.ctx.now()), succeeded, failed)

    # -- changes ---------------------------------------------------------------------------

    def patch(self, account: str, schedule_id: str, change: JobSchedulePatchParameter,
              conditions: Conditions = NONE) -> Record:
        return self._change(account, schedule_id, change, conditions, replace=False)

    def update(self, account: str, schedule_id: str, change: JobScheduleUpdateParameter,
               conditions: Conditions = NONE) -> Record:
        return self._change(account, schedule_id, change, conditions, replace=True)

    def _change(self, account: str, schedule_id: str, change: JobSchedulePatchParameter | JobScheduleUpdateParameter,
                conditions: Conditions, *, replace: bool) -> Record:
        """Only jobs created after the change see it; a new ``schedule`` counts its runs again from itself."""
        if change.jobSpecification is not None:
            auto_storage.check_configured(self.ctx.auto_storage, change.jobSpecification, auto_storage.JOB_NEEDS)
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, schedule_id, conditions, "update")
            now = self.ctx.now()
            body, rescheduled = rules.changed_body(record.body, change, replace=replace,
                                                   minimum=self.ctx.intervals.schedule_minimum)
            extra: dict = {}
            if rescheduled:
                extra.update(origin=clock.naive(rules.origin(body, now)), next_index=0)
            if rules.auto_pool_of(body) != rules.auto_pool_of(record.body):
                # later jobs get a pool of the new specification; the old one goes now unless a job runs on it
                if not queries.has_job(conn, account, record.row["id_key"], _ENDED):
                    self._delete_pool(conn, record)
                extra["pool_id"] = None
            return self._advance(conn, JOB_SCHEDULES.update(conn, record, body, now, extra), now)

    def disable(self, account: str, schedule_id: str, conditions: Conditions = NONE) -> Record:
        """No job starts until it is enabled again; a job already running goes on."""
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, schedule_id, conditions, "disable")
            if record.body["state"] == ScheduleState.DISABLED:
                return record
            now = self.ctx.now()
            body = rules.with_schedule_state(record.body, ScheduleState.DISABLED, now)
            return JOB_SCHEDULES.update(conn, record, body, now, {"due_at": None})

    def enable(self, account: str, schedule_id: str, conditions: Conditions = NONE) -> Record:
        """Runs whose window passed while it was disabled are lost; one whose window is open starts now."""
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, schedule_id, conditions, "enable")
            if record.body["state"] == ScheduleState.ACTIVE:
                return record
            now = self.ctx.now()
            body = rules.with_schedule_state(record.body, ScheduleState.ACTIVE, now)
            return self._advance(conn, JOB_SCHEDULES.update(conn, record, body, now), now)

    def terminate(self, account: str, schedule_id: str, conditions: Conditions = NONE) -> Record:
        """Its running job is terminated (terminateReason TerminateJobSchedule); it completes when that has."""
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, schedule_id, conditions, "terminate")
            now = self.ctx.now()
            body = rules.with_schedule_state(record.body, ScheduleState.TERMINATING, now)
            record = JOB_SCHEDULES.update(conn, record, rules.with_next_run(body, None), now, {"due_at": None})
            for job in queries.jobs_of(conn, account, record.row["id_key"], _ENDED + ("terminating",)):
                self.jobs.terminate_in(conn, job, "TerminateJobSchedule")
            return self._advance_by_pk(conn, record.pk, now) or record

    def delete(self, account: str, schedule_id: str, conditions: Conditions = NONE) -> None:
        """Every job of the schedule is deleted with its tasks; the schedule goes when they have."""
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, schedule_id, conditions, "delete")
            now = self.ctx.now()
            body = rules.with_schedule_state(record.body, ScheduleState.DELETING, now)
            record = JOB_SCHEDULES.update(conn, record, rules.with_next_run(body, None), now, {"due_at": None})
            for job in queries.jobs_of(conn, account, record.row["id_key"], ("deleting",)):
                self.jobs.delete_in(conn, job)
            self._advance_by_pk(conn, record.pk, now)

    # -- moving on -------------------------------------------------------------------------

    def run_due(self) -> datetime | None:
        """Advance every schedule whose time has come; when the next one is due (None: none waits)."""
        now = self.ctx.now()
        with self.ctx.store.read() as conn:
            due = queries.due(conn, now)
        for account, schedule_id in due:
            try:
                with self.ctx.store.write() as conn:
                    record = JOB_SCHEDULES.get(conn, (account,), (schedule_id,), for_update=True)
                    due_at = record.row["due_at"] if record is not None else None
                    if due_at is not None and clock.aware(due_at) <= now:   # another server may have been first
                        self._advance(conn, record, now)
            except Exception:  # noqa: BLE001 - one schedule that cannot move on must not hold the others
                log.exception("job schedule %s of account %s could not start its job; trying again in %s",
                              schedule_id, account, RETRY_AFTER)
                with self.ctx.store.write() as conn:
                    record = JOB_SCHEDULES.get(conn, (account,), (schedule_id,), for_update=True)
                    if record is not None:
                        JOB_SCHEDULES.set_columns(conn, record.pk, due_at=clock.naive(now + RETRY_AFTER))
        with self.ctx.store.read() as conn:
            return queries.next_due(conn)

    def job_ended(self, conn: Connection, job: Record) -> None:
        """(JobService, in its transaction.) A job of a schedule completed or was deleted."""
        account, key = job.row["account"], job.row["job_schedule_key"]
        record = JOB_SCHEDULES.get(conn, (account,), (key,), for_update=True)
        if record is not None:
            self._advance(conn, record, self.ctx.now())

    def _advance_by_pk(self, conn: Connection, pk: int, now: datetime) -> Record | None:
        record = JOB_SCHEDULES.get_by_pk(conn, pk, for_update=True)
        return self._advance(conn, record, now) if record is not None else None

    def _advance(self, conn: Connection, record: Record, now: datetime) -> Record:
        """Do what the schedule's state and the clock call for (its row locked by the caller)."""
        account, key = record.row["account"], record.row["id_key"]
        state = record.body["state"]
        if state == ScheduleState.DELETING:
            if not queries.has_job(conn, account, key, ()):
                self._delete_pool(conn, record)
                JOB_SCHEDULES.delete(conn, record.pk)
            return record
        running = queries.has_job(conn, account, key, _ENDED)
        if state == ScheduleState.TERMINATING:
            return record if running else self._complete(conn, record, now)
        if state != ScheduleState.ACTIVE:
            return record
        step = rules.plan(record.body, clock.aware(record.row["origin"]), record.row["next_index"], now, running)
        body = rules.with_next_run(record.body, step.next_run)
        extra = {"next_index": step.next_index, "due_at": clock.naive(step.due_at) if step.due_at else None}
        if step.create_job:
            number, job_id = self._next_job_id(conn, account, record)
            body = rules.with_recent_job(body, job_id)
            extra["jobs_created"] = number
            # the occurrence is used before its job exists: a job that completes as it is added (no
            # tasks, onAllTasksComplete terminatejob) moves the schedule on from here, not again
            record = JOB_SCHEDULES.update(conn, record, body, now, extra, touch=False)
            self._start_job(conn, account, record, job_id)
            return JOB_SCHEDULES.get_by_pk(conn, record.pk, for_update=True) or record
        if step.exhausted and not running:
            return self._complete(conn, record, now)
        if body == record.body and all(record.row.get(k) == v for k, v in extra.items()):
            return record
        # the schedule's own data did not change (Azure's lastModified): no new ETag
        return JOB_SCHEDULES.update(conn, record, body, now, extra, touch=False)

    def _next_job_id(self, conn: Connection, account: str, record: Record) -> tuple[int, str]:
        """The next job number and id (skipping an id still held by a job of an earlier schedule of that id)."""
        number = record.row["jobs_created"] + 1
        while JOBS.get(conn, (account,), (rules.job_id(record.body["id"], number),)) is not None:
            number += 1
        return number, rules.job_id(record.body["id"], number)

    def _start_job(self, conn: Connection, account: str, record: Record, job_id: str) -> None:
        """Add the occurrence's job. With poolLifetimeOption jobschedule the schedule's jobs share one
        auto pool: the first job (or the first after the pool went, or after its specification changed)
        makes it, and the schedule remembers it."""
        spec = record.body["jobSpecification"]
        shared = (spec.get("poolInfo", {}).get("autoPoolSpecification") or {}).get("poolLifetimeOption") == "jobschedule"
        pool_id = record.row.get("pool_id") if shared else None
        if pool_id is not None:
            pool = POOLS.get(conn, (account,), (pool_id,))
            if pool is None or pool.body["state"] == "deleting":
                pool_id = None
        job = self.jobs.add_in(conn, account, rules.job_parameter(record.body, job_id),
                               schedule_key=record.row["id_key"], pool_id=pool_id)
        made = job.body.get("executionInfo", {}).get("poolId")
        if shared and pool_id is None and made:
            JOB_SCHEDULES.set_columns(conn, record.pk, pool_id=made)

    def _complete(self, conn: Connection, record: Record, now: datetime) -> Record:
        self._delete_pool(conn, record)
        return JOB_SCHEDULES.update(conn, record, rules.completed(record.body, now), now, {"due_at": None})

    def _delete_pool(self, conn: Connection, record: Record) -> None:
        """The auto pool its jobs shared goes with the schedule (unless keepAlive)."""
        pool_id = record.row.get("pool_id")
        spec = record.body["jobSpecification"].get("poolInfo", {}).get("autoPoolSpecification") or {}
        if pool_id is None or spec.get("keepAlive") or self.jobs.pools is None:
            return
        account = record.row["account"]
        pool = POOLS.get(conn, (account,), (pool_id,), for_update=True)
        if pool is not None and pool.body["state"] != "deleting":
            self.jobs.pools.delete_in(conn, account, pool)

    def _locked(self, conn: Connection, account: str, schedule_id: str, conditions: Conditions, action: str) -> Record:
        record = _require(conn, account, schedule_id, for_update=True)
        check(conditions, record.etag, record.last_modified, read=False)
        rules.check_action(action, ScheduleState(record.body["state"]))
        return record


def _require(conn: Connection, account: str, schedule_id: str, *, for_update: bool = False) -> Record:
    record = JOB_SCHEDULES.get(conn, (account,), (schedule_id,), for_update=for_update)
    if record is None:
        raise not_found("JobScheduleNotFound", "job schedule", schedule_id)
    return record

