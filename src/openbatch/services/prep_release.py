"""Job preparation and release task status: one row per (job, node) that ran either task.

The execution layer reports each run through :meth:`record`; List Preparation And
Release Task Status reads the rows, including nodes since removed from the pool.
"""

from __future__ import annotations

from typing import Any, Literal

from ..domain.errors import BatchError
from ..store.records import PREP_RELEASE, Record
from .context import ListQuery, Page, ServiceContext, page_of, require_job

Json = dict[str, Any]

Kind = Literal["preparation", "release"]
_FIELD = {"preparation": "jobPreparationTaskExecutionInfo", "release": "jobReleaseTaskExecutionInfo"}


def _position(record: Record) -> tuple[str, str]:
    return (record.row["pool_id_key"], record.row["node_id_key"])


class PrepReleaseService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def list(self, account: str, job_id: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            job = require_job(conn, account, job_id)
            if "jobPreparationTask" not in job.body and "jobReleaseTask" not in job.body:
                raise BatchError(
                    "JobPreparationTaskNotSpecified",
                    "The specified job does not have a Job Preparation or Job Release Task.",
                    [("JobId", job.body["id"])],
                )
            records = PREP_RELEASE.page(conn, (job.pk,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, _position)

    def record(self, account: str, job_id: str, pool_id: str, node_id: str, kind: Kind, info: Json) -> Record:
        """Store the latest execution information of one task kind on one node."""
        with self.ctx.store.write() as conn:
            job = require_job(conn, account, job_id, for_update=True)
            current = PREP_RELEASE.get(conn, (job.pk,), (pool_id, node_id), for_update=True)
            now = self.ctx.now()
            if current is None:
                body = {"poolId": pool_id, "nodeId": node_id, _FIELD[kind]: info}
                return PREP_RELEASE.insert(conn, (job.pk,), body, now)
            return PREP_RELEASE.update(conn, current, {**current.body, _FIELD[kind]: info}, now)
