"""A task's state change and the job's counters, always together in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ..domain import counts
from ..store.records import TASKS, Record, adjust_counters

Json = dict[str, Any]


def apply(conn: Connection, job: Record, task: Record, body: Json, now: datetime) -> Record:
    """Store the task's new body and move the job's counters by the same step."""
    old = task.body
    change = counts.delta(
        old["state"], old.get("executionInfo", {}).get("result"),
        body["state"], body.get("executionInfo", {}).get("result"),
        old["requiredSlots"],
    )
    adjust_counters(conn, job.pk, change)
    return TASKS.update(conn, task, body, now)
