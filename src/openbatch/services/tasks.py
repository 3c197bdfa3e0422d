"""Task use cases, one transaction each; every state change moves the job's counters with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..store.engine import Conflict, Connection, Duplicate, WriterLock

from ..domain import counts, multi_instance, tasks as rules
from ..domain.conditions import NONE, Conditions, check
from ..domain.errors import BatchError
from ..domain.models import TaskAddParameter, TaskUpdateParameter, decode
from ..domain.states import JobState, check_job_action
from ..store import subtask_queries
from ..store.records import POOLS, TASKS, Record, adjust_counters
from . import auto_storage, reservations, task_events, transitions
from .retention import remove_task_directory
from .calls import bounded_write, point_read
from .context import (ListQuery, Page, ServiceContext, id_key, page_of, require_job,
                      require_task, require_task_on_loop)
from .jobs import JobService

Json = dict[str, Any]

MAX_TASKS_PER_COLLECTION = 100
#: Tries of an addition that meets concurrent ones (PostgreSQL); the last runs alone, so it cannot.
ADD_ATTEMPTS = 4


@dataclass(slots=True)
class TaskAddOutcome:
    task_id: str
    record: Record | None = None
    error: BatchError | None = None


class TaskService:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs

    # -- create ----------------------------------------------------------------------------

    @bounded_write
    def add(self, account: str, job_id: str, task: TaskAddParameter) -> Record:
        """One task, placed in the same transaction when its pool has room (as an exit report places
        the next tasks): no wait for the scheduler, one transaction and commit fewer before it runs."""
        outcome = self._add_one_and_place(account, job_id, task)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.record is not None
        return outcome.record

    @bounded_write
    def add_collection(
        self, account: str, job_id: str, items: Sequence[TaskAddParameter | Json]
    ) -> list[TaskAddOutcome]:
        """Add up to 100 tasks (decoded, or raw items to decode); each gets its own result (success or clienterror)."""
        if len(items) > MAX_TASKS_PER_COLLECTION:
            raise BatchError(
                "RequestBodyTooLarge",
                f"A task collection may hold at most {MAX_TASKS_PER_COLLECTION} tasks.",
                [("MaxTasks", str(MAX_TASKS_PER_COLLECTION)), ("Tasks", str(len(items)))],
            )
        decoded: list[TaskAddParameter | TaskAddOutcome] = []
        for item in items:
            if isinstance(item, TaskAddParameter):
                decoded.append(item)
                continue
            try:
                decoded.append(decode(item, TaskAddParameter))
            except BatchError as error:
                task_id = item.get("id") if isinstance(item, dict) else None
                decoded.append(TaskAddOutcome(str(task_id or ""), error=error))
        tasks = [t for t in decoded if isinstance(t, TaskAddParameter)]
        added = iter(self._add_many(account, job_id, tasks))
        return [next(added) if isinstance(t, TaskAddParameter) else t for t in decoded]

    def _add_many(self, account: str, job_id: str, tasks: Sequence[TaskAddParameter]) -> list[TaskAddOutcome]:
        """Adding tasks runs alongside other additions (PostgreSQL): it only inserts rows and moves
        the job's counters by a delta, and nothing else can change the job meanwhile (every other
        writer excludes it). Two additions of the same id at once: the one that runs again finds
        the other's task and answers TaskExists."""
        for _ in range(ADD_ATTEMPTS - 1):
            try:
                return self._add_many_once(account, job_id, tasks, "shared")
            except Conflict:
                pass
        return self._add_many_once(account, job_id, tasks, "exclusive")

    def _add_one_and_place(self, account: str, job_id: str, task: TaskAddParameter) -> TaskAddOutcome:
        """A round needs the writers' lock alone (it changes nodes and other tasks). Alone, the addition
        need not look for its id first: the job's unique key on task ids refuses a taken one, and the
        transaction, rolled back, changed nothing (a statement less on the way to running)."""
        try:
            return self._add_many_once(account, job_id, [task], "exclusive", place=True, look_for_ids=False)[0]
        except Duplicate as duplicate:
            if not TASKS.refused(duplicate):
                raise
            return TaskAddOutcome(task.id, error=_task_exists(task.id))

    def _add_many_once(
        self, account: str, job_id: str, tasks: Sequence[TaskAddParameter], lock: WriterLock, place: bool = False,
        look_for_ids: bool = True,
    ) -> list[TaskAddOutcome]:
        now = self.ctx.now()
        with self.ctx.store.write(lock=lock) as conn:
            # (Shared: no row lock, or additions would queue on the job; nothing else writes meanwhile.)
            job = require_job(conn, account, job_id, for_update=lock == "exclusive")
            check_job_action("add_task", JobState(job.body["state"]))
            outcomes = [TaskAddOutcome(t.id) for t in tasks]
            fresh: list[tuple[TaskAddOutcome, Json]] = []
            seen: set[str] = set()
            existing = TASKS.existing_keys(conn, (job.pk,), [t.id for t in tasks if isinstance(t.id, str)]) \
                if look_for_ids else set()
            validate = rules.new_task_validator(job.body)
            body_of = rules.new_task_bodies(job.body, now)
            for outcome, task in zip(outcomes, tasks):
                try:
                    validate(task)
                    if task.resourceFiles:
                        auto_storage.check_configured(self.ctx.auto_storage, task, auto_storage.TASK_NEEDS)
                    key = task.id.lower()
                    if key in existing or key in seen:
                        raise _task_exists(task.id)
                    seen.add(key)
                    body = body_of(task)
                    if task.multiInstanceSettings is not None:
                        multi_instance.check_task(body, job.body, self._pool_of(conn, account, job.body))
                    fresh.append((outcome, body))
                except BatchError as error:
                    outcome.error = error
            records = transitions.insert_tasks(conn, job, [body for _, body in fresh], now)
            for (outcome, _), record in zip(fresh, records):
                outcome.record = record
            if records:
                self._place_or_wake(conn, job, outcomes if place else [])
            return outcomes

    def _place_or_wake(self, conn: Connection, job: Record, placing: list[TaskAddOutcome]) -> None:
        """Tasks were added to ``job`` (as read before). Without ``placing``, their pool's reservations
        yield to them as they should (:func:`reservations.tasks_added`) and the scheduler is woken.

        With ``placing``, the pool's round runs here (the records then show what it made of them:
        state, ETag), and the yield only when one of them waits: a task the round placed waits behind
        nothing, and the yield is a statement or more fewer. When the yield cancels reservations, the
        slots they held are free now, and the round runs again (what running the yield first would
        have given). The scheduler is woken when a round says another may place more (as after an
        exit report); any other round has seen all the scheduler would."""
        pool_key = job.row["pool_id_key"]
        if not (placing and pool_key and self.ctx.schedules):
            reservations.tasks_added(self.ctx, conn, job)
            self.ctx.wake_after(conn)
            return
        account = job.row["account"]
        added = {outcome.task_id.lower(): outcome for outcome in placing if outcome.record is not None}
        done = self.ctx.schedule_in(conn, account, pool_key)
        placed, more = _of_job(done.placed, job.pk), done.more
        if added.keys() - placed.keys() and reservations.tasks_added(self.ctx, conn, job):
            again = self.ctx.schedule_in(conn, account, pool_key)
            placed.update(_of_job(again.placed, job.pk))
            more = more or again.more
        for key, record in placed.items():
            if key in added:
                added[key].record = record
        if more:
            self.ctx.wake_after(conn)

    # -- read ------------------------------------------------------------------------------

    @point_read
    def get(self, account: str, job_id: str, task_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.read() as conn:
            job = require_job(conn, account, job_id)
            record = require_task(conn, job, task_id)
        check(conditions, record.etag, record.last_modified, read=True)
        return record

    async def get_on_loop(self, account: str, job_id: str, task_id: str, conditions: Conditions = NONE) -> Record:
        """:meth:`get` on the event loop, where the store reads there (PostgreSQL; a client polling
        its task is the commonest read after the counts)."""
        reads = self.ctx.store.loop_reads
        assert reads is not None
        record = await require_task_on_loop(reads, account, job_id, task_id)
        check(conditions, record.etag, record.last_modified, read=True)
        return record

    @staticmethod
    def _pool_of(conn: Connection, account: str, job: Json) -> Json | None:
        """The pool the job runs on (its auto pool's specification), when it exists now."""
        info = job.get("poolInfo", {})
        if "poolId" in info:
            pool = POOLS.get(conn, (account,), (info["poolId"].lower(),))
            return pool.body if pool is not None else None
        return info.get("autoPoolSpecification", {}).get("pool")

    def list(self, account: str, job_id: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            job = require_job(conn, account, job_id)
            records = TASKS.page(conn, (job.pk,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    def list_subtasks(self, account: str, job_id: str, task_id: str) -> list[Json]:
        """The subtasks (SubtaskInformation) of a multi-instance task's current or last attempt; none for
        another task."""
        with self.ctx.store.read() as conn:
            job = require_job(conn, account, job_id)
            task = require_task(conn, job, task_id)
            if "multiInstanceSettings" not in task.body:
                return []
            return [row.body for row in subtask_queries.of_task(conn, task.pk) if row.instance > 0]

    # -- change ----------------------------------------------------------------------------

    def update(
        self, account: str, job_id: str, task_id: str, update: TaskUpdateParameter, conditions: Conditions = NONE
    ) -> Record:
        with self.ctx.store.write() as conn:
            job, record = self._locked(conn, account, job_id, task_id, conditions)
            reservations.cancel_tasks(self.ctx, conn, [record.pk])   # (its queued run has the old constraints)
            return TASKS.update(conn, record, rules.with_constraints(record.body, update.constraints, job.body), self.ctx.now())

    def terminate(self, account: str, job_id: str, task_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            job, record = self._locked(conn, account, job_id, task_id, conditions)
            now = self.ctx.now()
            reservations.cancel_tasks(self.ctx, conn, [record.pk], ended=True)
            record = transitions.stop_on_node(self.ctx, conn, job, record, rules.terminated(record.body, now), now)
            self.jobs.after_tasks_changed(conn, job)
            self.jobs.settle_in(conn, job)
            return record

    def reactivate(self, account: str, job_id: str, task_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            job, record = self._locked(conn, account, job_id, task_id, conditions)
            check_job_action("change_task", JobState(job.body["state"]))
            record = transitions.apply(conn, job, record, rules.reactivated(record.body, self.ctx.now()), self.ctx.now())
            self.ctx.wake_after(conn)
            return record

    def delete(self, account: str, job_id: str, task_id: str, conditions: Conditions = NONE) -> None:
        with self.ctx.store.write() as conn:
            job, record = self._locked(conn, account, job_id, task_id, conditions)
            now = self.ctx.now()
            reservations.cancel_tasks(self.ctx, conn, [record.pk], ended=True)
            if record.body["state"] in ("preparing", "running"):
                record = transitions.stop_on_node(self.ctx, conn, job, record, rules.terminated(record.body, now), now)
            body = record.body
            change = counts.delta(body["state"], body.get("executionInfo", {}).get("result"), None, None,
                                  body["requiredSlots"])
            remove_task_directory(self.ctx, conn, record)
            TASKS.delete(conn, record.pk)
            adjust_counters(conn, job.pk, change)
            task_events.changed(conn, body, None, now)
            self.jobs.after_tasks_changed(conn, job)
            self.jobs.settle_in(conn, job)

    def _locked(
        self, conn: Connection, account: str, job_id: str, task_id: str, conditions: Conditions
    ) -> tuple[Record, Record]:
        job = require_job(conn, account, job_id, for_update=True)
        if job.body["state"] == JobState.DELETING.value:
            check_job_action("change_task", JobState.DELETING)
        record = require_task(conn, job, task_id, for_update=True)
        check(conditions, record.etag, record.last_modified, read=False)
        return job, record


def _of_job(placed: dict[int, Record], job_pk: int) -> dict[str, Record]:
    """Of a round's placed tasks, the job's, by id key (the records of tasks just added have no pk)."""
    return {record.body["id"].lower(): record for record in placed.values() if record.row["job_pk"] == job_pk}


def _task_exists(task_id: str) -> BatchError:
    return BatchError("TaskExists", "The specified task already exists.", [("TaskId", task_id)])
