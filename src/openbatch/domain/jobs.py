"""Job rules: validation of a new or changed job and the job resource as stored.

The stored body is the CloudJob wire shape without url, eTag, lastModified and
stats (those come from the row). Defaults are filled in as Azure shows them on
Get: priority 0, maxParallelTasks -1, onAllTasksComplete noaction, ...
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import clock
from .errors import BatchError, invalid_property
from .models import (
    JobAddParameter,
    JobConstraints,
    JobPatchParameter,
    JobPreparationTask,
    JobReleaseTask,
    JobUpdateParameter,
    PoolAddParameter,
    to_json,
)
from .states import JobState, with_state
from . import auto_pools, job_manager
from .pools import validate_new_pool
from .support import REFUSED_JOB, REFUSED_JOB_CHANGE, check_supported
from .tasks import check_task_common, new_task_validator
from .validation import (
    UNLIMITED_DURATION,
    check_application_packages,
    check_display_name,
    check_duration,
    check_id,
    check_metadata,
    check_range,
)

Json = dict[str, Any]

DEFAULT_PREP_ID = "jobpreparation"
DEFAULT_RELEASE_ID = "jobrelease"
RELEASE_MAX_WALL_CLOCK = timedelta(minutes=15)


def _check_constraints(constraints: JobConstraints | None, prefix: str = "constraints") -> None:
    if constraints is None:
        return
    check_duration(constraints.maxWallClockTime, f"{prefix}/maxWallClockTime")
    if constraints.maxTaskRetryCount is not None and constraints.maxTaskRetryCount < -1:
        raise invalid_property(f"{prefix}/maxTaskRetryCount", constraints.maxTaskRetryCount, "Must be -1 or greater.")


def _check_common(
    priority: int | None, max_parallel: int | None, constraints: JobConstraints | None, metadata: list | None
) -> None:
    check_range(priority, "priority", -1000, 1000)
    if max_parallel is not None and max_parallel != -1 and max_parallel <= 0:
        raise invalid_property("maxParallelTasks", max_parallel, "The value must be -1 or greater than 0.")
    _check_constraints(constraints)
    check_metadata(metadata)


def _validate_auto_pool(pool: PoolAddParameter) -> None:
    validate_new_pool(pool)
    check_application_packages(pool.applicationPackageReferences)


def _check_pool_info(job: JobAddParameter | JobUpdateParameter | JobPatchParameter, adding: bool = False,
                     in_schedule: bool = False) -> None:
    info = job.poolInfo
    if info is None:
        return
    if not info.poolId and not info.autoPoolSpecification:
        raise invalid_property("poolInfo", "", "Either poolId or autoPoolSpecification must be specified.")
    if info.poolId and info.autoPoolSpecification:
        raise invalid_property("poolInfo", "", "Only one of poolId and autoPoolSpecification may be specified.")
    if info.poolId:
        check_id(info.poolId, "poolInfo/poolId")
    if adding and info.autoPoolSpecification is not None:
        auto_pools.check_spec(to_json(info.autoPoolSpecification), _validate_auto_pool, in_schedule=in_schedule)
    elif not adding:
        check_supported(job, REFUSED_JOB_CHANGE)


def _check_preparation(task: JobPreparationTask) -> None:
    if task.id is not None:
        check_id(task.id, "jobPreparationTask/id")
    check_task_common(task, "jobPreparationTask")
    if task.constraints is not None:
        check_duration(task.constraints.maxWallClockTime, "jobPreparationTask/constraints/maxWallClockTime")
        check_duration(task.constraints.retentionTime, "jobPreparationTask/constraints/retentionTime")


def _check_release(task: JobReleaseTask) -> None:
    if task.id is not None:
        check_id(task.id, "jobReleaseTask/id")
    check_task_common(task, "jobReleaseTask")
    check_duration(task.maxWallClockTime, "jobReleaseTask/maxWallClockTime", maximum=RELEASE_MAX_WALL_CLOCK)
    check_duration(task.retentionTime, "jobReleaseTask/retentionTime")


def validate_new_job(job: JobAddParameter, *, in_schedule: bool = False) -> None:
    """``in_schedule``: the job specification of a job schedule (its id is the schedule's)."""
    check_id(job.id)
    check_display_name(job.displayName)
    _check_common(job.priority, job.maxParallelTasks, job.constraints, job.metadata)
    _check_pool_info(job, adding=True, in_schedule=in_schedule)
    if job.jobReleaseTask is not None and job.jobPreparationTask is None:
        raise invalid_property(
            "jobReleaseTask", "", "A Job Release Task cannot be specified without also specifying a Job Preparation Task."
        )
    if job.jobPreparationTask is not None:
        _check_preparation(job.jobPreparationTask)
    if job.jobReleaseTask is not None:
        _check_release(job.jobReleaseTask)
        prep_id = job.jobPreparationTask.id if job.jobPreparationTask else None  # type: ignore[union-attr]
        if (job.jobReleaseTask.id or DEFAULT_RELEASE_ID).lower() == (prep_id or DEFAULT_PREP_ID).lower():
            raise invalid_property("jobReleaseTask/id", job.jobReleaseTask.id or DEFAULT_RELEASE_ID,
                                   "The Job Release Task id must differ from the Job Preparation Task id.")
    if job.jobManagerTask is not None:
        job_manager.check_manager(job, new_task_validator({}))
    check_supported(job, REFUSED_JOB)


def new_job_body(job: JobAddParameter, now: datetime) -> Json:
    """The CloudJob body stored for a new job, with Azure's visible defaults."""
    body = {"id": job.id, **to_json(job)}
    body.setdefault("priority", 0)
    body.setdefault("maxParallelTasks", -1)
    body.setdefault("allowTaskPreemption", False)
    body.setdefault("usesTaskDependencies", False)
    body["constraints"] = _constraints_with_defaults(body.get("constraints"))
    body.setdefault("onAllTasksComplete", "noaction")
    body.setdefault("onTaskFailure", "noaction")
    if "jobPreparationTask" in body:
        prep = body["jobPreparationTask"]
        prep.setdefault("id", DEFAULT_PREP_ID)
        prep.setdefault("waitForSuccess", True)
        prep.setdefault("rerunOnNodeRebootAfterSuccess", True)
        prep["constraints"] = {
            "maxWallClockTime": UNLIMITED_DURATION,
            "retentionTime": "P7D",
            "maxTaskRetryCount": 0,
            **prep.get("constraints", {}),
        }
    if "jobReleaseTask" in body:
        release = body["jobReleaseTask"]
        release.setdefault("id", DEFAULT_RELEASE_ID)
        release.setdefault("maxWallClockTime", "PT15M")
        release.setdefault("retentionTime", "P7D")
    stamp = clock.to_wire(now)
    body.update(creationTime=stamp, state=JobState.ACTIVE.value, stateTransitionTime=stamp)
    job_manager.with_job_defaults(body)
    body["executionInfo"] = {"startTime": stamp, "poolId": (job.poolInfo.poolId or "")}
    if not body["executionInfo"]["poolId"]:
        del body["executionInfo"]["poolId"]
    return body


def _constraints_with_defaults(constraints: Json | None) -> Json:
    return {"maxWallClockTime": UNLIMITED_DURATION, "maxTaskRetryCount": 0, **(constraints or {})}


def _check_on_all_tasks_complete(current: str, new: str | None) -> None:
    if current == "terminatejob" and new in (None, "noaction"):
        raise invalid_property(
            "onAllTasksComplete", new or "noaction", "The completion behavior may not change from terminatejob to noaction."
        )


def _check_pool_change(state: JobState, body: Json, pool_info: Json | None) -> None:
    if pool_info is None or pool_info == body.get("poolInfo"):
        return
    if state is not JobState.DISABLED:
        raise BatchError(
            "JobNotActive" if state is not JobState.ACTIVE else "OperationInvalidForCurrentState",
            "The pool of a job may change only while the job is disabled.",
            [("PropertyName", "poolInfo"), ("JobState", state.value)],
        )


def patched_body(body: Json, patch: JobPatchParameter) -> Json:
    """Patch replaces only the properties given."""
    _check_common(patch.priority, patch.maxParallelTasks, patch.constraints, patch.metadata)
    _check_pool_info(patch)
    if patch.onAllTasksComplete is not None:
        _check_on_all_tasks_complete(body.get("onAllTasksComplete", "noaction"), patch.onAllTasksComplete)
    changes = to_json(patch)
    _check_pool_change(JobState(body["state"]), body, changes.get("poolInfo"))
    new = dict(body)
    for key, value in changes.items():
        new[key] = _constraints_with_defaults(value) if key == "constraints" else value
    _sync_pool_id(new)
    return new


def updated_body(body: Json, update: JobUpdateParameter) -> Json:
    """Update (PUT) replaces every updatable property; omitted ones take their defaults."""
    _check_common(update.priority, update.maxParallelTasks, update.constraints, update.metadata)
    _check_pool_info(update)
    _check_on_all_tasks_complete(body.get("onAllTasksComplete", "noaction"), update.onAllTasksComplete)
    changes = to_json(update)
    _check_pool_change(JobState(body["state"]), body, changes.get("poolInfo"))
    new = dict(body)
    new["priority"] = changes.get("priority", 0)
    new["maxParallelTasks"] = changes.get("maxParallelTasks", -1)
    new["allowTaskPreemption"] = changes.get("allowTaskPreemption", False)
    new["constraints"] = _constraints_with_defaults(changes.get("constraints"))
    new["poolInfo"] = changes["poolInfo"]
    new["metadata"] = changes.get("metadata", [])
    new["onAllTasksComplete"] = changes.get("onAllTasksComplete", "noaction")
    if "networkConfiguration" in changes:
        new["networkConfiguration"] = changes["networkConfiguration"]
    _sync_pool_id(new)
    return new


def _sync_pool_id(body: Json) -> None:
    pool_id = body.get("poolInfo", {}).get("poolId")
    if pool_id:
        body.setdefault("executionInfo", {})["poolId"] = pool_id


def completed(body: Json, reason: str, now: datetime) -> Json:
    new = with_state(body, JobState.COMPLETED, now)
    info = dict(new.get("executionInfo", {}))
    info["endTime"] = clock.to_wire(now)
    info["terminateReason"] = reason
    new["executionInfo"] = info
    return new
