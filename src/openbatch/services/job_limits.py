"""Job constraints enforced over time: maxWallClockTime, measured from the job's creation."""

from __future__ import annotations

from ..domain import clock
from ..domain.validation import UNLIMITED_DURATION, parse_duration
from ..store.records import JOBS
from ..store.task_queries import jobs_with_wall_clock
from .context import ServiceContext
from .jobs import JobService


class JobLimits:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs

    def expire_overdue(self) -> int:
        """Terminate active jobs past their maxWallClockTime (reason MaxWallClockTimeExpiry)."""
        now = self.ctx.now()
        with self.ctx.store.read() as conn:
            rows = jobs_with_wall_clock(conn, ["active", "disabling", "disabled", "enabling"])
        overdue = []
        for row in rows:
            limit = JOBS.decode(row.body).get("constraints", {}).get("maxWallClockTime")
            if limit and limit != UNLIMITED_DURATION:
                deadline = clock.aware(row.creation_time) + parse_duration(limit, "maxWallClockTime")
                if deadline <= now:
                    overdue.append(row.pk)
        for pk in overdue:
            with self.ctx.store.write() as conn:
                job = JOBS.get_by_pk(conn, pk, for_update=True)
                if job is not None and job.body["state"] in ("active", "disabling", "disabled", "enabling"):
                    self.jobs.terminate_in(conn, job, "MaxWallClockTimeExpiry")
        return len(overdue)


