"""Reports from compute nodes: a task was assigned, started, exited.

The execution layer (scheduler and node agents) calls these; each is one
transaction that moves the task and the job's counters together.
"""

from __future__ import annotations

from typing import Any

from ..domain import execution as rules
from ..store.records import Record
from . import transitions
from .context import ServiceContext, require_job, require_task
from .jobs import JobService

Json = dict[str, Any]


class ExecutionService:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs

    def task_assigned(self, account: str, job_id: str, task_id: str, node_info: Json, *, preparing: bool) -> Record:
        with self.ctx.store.write() as conn:
            job = require_job(conn, account, job_id, for_update=True)
            task = require_task(conn, job, task_id, for_update=True)
            now = self.ctx.now()
            return transitions.apply(conn, job, task, rules.assigned(task.body, node_info, now, preparing=preparing), now)

    def task_running(self, account: str, job_id: str, task_id: str) -> Record:
        with self.ctx.store.write() as conn:
            job = require_job(conn, account, job_id, for_update=True)
            task = require_task(conn, job, task_id, for_update=True)
            now = self.ctx.now()
            return transitions.apply(conn, job, task, rules.running(task.body, now), now)

    def task_exited(self, account: str, job_id: str, task_id: str, exit_code: int) -> Record:
        with self.ctx.store.write() as conn:
            job = require_job(conn, account, job_id, for_update=True)
            task = require_task(conn, job, task_id, for_update=True)
            now = self.ctx.now()
            record = transitions.apply(conn, job, task, rules.exited(task.body, exit_code, now), now)
            self.jobs.after_tasks_changed(conn, job)
            return record
