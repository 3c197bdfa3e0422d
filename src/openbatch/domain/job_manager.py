"""Job Manager tasks (JobAddParameter.jobManagerTask): the task that drives its job.

It is a task of its job like any other (same id rules, constraints, retries, outputs, task
counts), made when the job is added so it comes first in the job's task order. On top:

- ``killJobOnCompletion`` (default true): when it completes, successfully or not, the job
  is terminated with ``terminateReason`` ``JMComplete``, ending what still runs;
- ``runExclusive`` (default true): no other task shares its node while it runs. It takes
  every slot of its node: its ``requiredSlots`` becomes the pool's ``taskSlotsPerNode``
  when the job is added (for a pool that does not exist yet, its own requiredSlots);
- ``allowLowPriorityNode`` (default true): false keeps it off low-priority nodes (scheduler/placement.py);
- ``authenticationTokenSettings`` (any task may have them): see :mod:`openbatch.auth.task_tokens`.
"""

from __future__ import annotations

from typing import Any

from .errors import BatchError, invalid_property
from .models import JobAddParameter, TaskAddParameter, decode, to_json

Json = dict[str, Any]

#: The JobManagerTask properties that are not properties of the task it becomes.
_JOB_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")
PREFIX = "jobManagerTask"


def manager_task(job: JobAddParameter) -> TaskAddParameter:
    """The task the job manager is, as a Task Add request (its errors name jobManagerTask/...)."""
    assert job.jobManagerTask is not None
    spec = {k: v for k, v in to_json(job.jobManagerTask).items() if k not in _JOB_ONLY}
    return decode(spec, TaskAddParameter)


def check_manager(job: JobAddParameter, validate_task: Any) -> None:
    """400 for a job manager no task could be (``validate_task``: Task Add's own checks for this job)."""
    manager = job.jobManagerTask
    assert manager is not None
    reserved = {(job.jobPreparationTask.id if job.jobPreparationTask else None) or "jobpreparation",
                (job.jobReleaseTask.id if job.jobReleaseTask else None) or "jobrelease"}
    if job.jobPreparationTask is None:
        reserved.discard("jobpreparation")
    if job.jobReleaseTask is None:
        reserved.discard("jobrelease")
    if manager.id.lower() in {r.lower() for r in reserved}:
        raise invalid_property(f"{PREFIX}/id", manager.id,
                               "The Job Manager Task id must differ from the Job Preparation and Release Task ids.")
    try:
        validate_task(manager_task(job))
    except BatchError as error:
        values = [(key, f"{PREFIX}/{value}" if key == "PropertyName" and value else value)
                  for key, value in error.values]
        raise BatchError(error.code, error.message, values, status=error.status) from None


def with_job_defaults(body: Json) -> None:
    """The stored job's jobManagerTask with its documented defaults (in place)."""
    manager = body.get("jobManagerTask")
    if manager is not None:
        manager.setdefault("killJobOnCompletion", True)
        manager.setdefault("runExclusive", True)
        manager.setdefault("allowLowPriorityNode", True)


def manager_id(job: Json) -> str | None:
    manager = job.get("jobManagerTask")
    return manager["id"] if manager else None


def kills_job(job: Json) -> bool:
    manager = job.get("jobManagerTask")
    return bool(manager) and manager.get("killJobOnCompletion", True) is not False


def exclusive_slots(job: Json, task_body: Json, pool_slots: int | None) -> int:
    """The requiredSlots of the job manager's task: all of its node's slots when it runs exclusively."""
    slots = int(task_body.get("requiredSlots", 1))
    if pool_slots is None or job["jobManagerTask"].get("runExclusive", True) is False:
        return slots
    return max(slots, pool_slots)
