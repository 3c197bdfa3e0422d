"""Task rules: validation of a new task against its job, the stored task body, and transitions."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Any, Callable

from . import clock
from .containers import check_container_settings
from .identities import check_user_identity
from .errors import BatchError, invalid_property
from .output_files import check_output_files
from .models import TaskAddParameter, TaskConstraints, to_json
from .states import TaskState, with_state
from .support import REFUSED_TASK, check_supported
from .validation import (
    SEVEN_DAYS,
    UNLIMITED_DURATION,
    check_application_packages,
    check_display_name,
    check_duration,
    check_id,
    parse_duration,
)

Json = dict[str, Any]

#: Docs: the taskIds list of a task's dependencies may be at most 64,000 characters in all.
MAX_DEPENDENCY_IDS_LENGTH = 64000
MAX_SLOTS = 256

#: The top-level properties a refused property of a task sits under: a task that sets none of
#: them (nearly every task) skips the walk of :data:`REFUSED_TASK`.
_REFUSABLE = attrgetter(*sorted({rule.path.split("/")[0].removesuffix("[]") for rule in REFUSED_TASK}))


def check_task_common(task: Any, prefix: str) -> None:
    """Checks shared by every kind of task: resource files and environment settings."""
    for i, rf in enumerate(getattr(task, "resourceFiles", None) or ()):
        where = f"{prefix}/resourceFiles/{i}"
        sources = [s for s in (rf.autoStorageContainerName, rf.storageContainerUrl, rf.httpUrl) if s]
        if len(sources) != 1:
            raise invalid_property(
                where, "", "Exactly one of autoStorageContainerName, storageContainerUrl and httpUrl must be specified."
            )
        if rf.httpUrl and not rf.filePath:
            raise invalid_property(f"{where}/filePath", "", "filePath is required with httpUrl.")
        if rf.httpUrl and rf.blobPrefix:
            raise invalid_property(f"{where}/blobPrefix", rf.blobPrefix,
                                   "blobPrefix is valid only with autoStorageContainerName or storageContainerUrl.")
        if rf.storageContainerUrl and not rf.storageContainerUrl.lower().startswith(("http://", "https://")):
            raise invalid_property(f"{where}/storageContainerUrl", rf.storageContainerUrl,
                                   "The container URL must be an http or https URL.")
        if rf.filePath and (".." in rf.filePath.replace("\\", "/").split("/") or rf.filePath.startswith("/")):
            raise invalid_property(f"{where}/filePath", rf.filePath, "The path must stay inside the task working directory.")
        if rf.fileMode is not None and not _is_octal(rf.fileMode):
            raise invalid_property(f"{where}/fileMode", rf.fileMode, "fileMode must be an octal number such as 0770.")
    for i, setting in enumerate(getattr(task, "environmentSettings", None) or ()):
        if not setting.name:
            raise invalid_property(f"{prefix}/environmentSettings/{i}/name", "", "The name must not be empty.")
    check_user_identity(getattr(task, "userIdentity", None), f"{prefix}/userIdentity".lstrip("/"))
    check_container_settings(getattr(task, "containerSettings", None), prefix)


def _is_octal(text: str) -> bool:
    """An octal permission mode without setuid, setgid or sticky bits (the file is written by root)."""
    return bool(text) and all(c in "01234567" for c in text) and len(text) <= 4 and int(text, 8) <= 0o777


def check_constraints(constraints: TaskConstraints | None, prefix: str = "constraints") -> None:
    if constraints is None:
        return
    check_duration(constraints.maxWallClockTime, f"{prefix}/maxWallClockTime")
    check_duration(constraints.retentionTime, f"{prefix}/retentionTime")
    if constraints.maxTaskRetryCount is not None and constraints.maxTaskRetryCount < -1:
        raise invalid_property(f"{prefix}/maxTaskRetryCount", constraints.maxTaskRetryCount, "Must be -1 or greater.")


def validate_new_task(task: TaskAddParameter, job: Json) -> None:
    """Everything about a new task that can be checked without the other tasks."""
    new_task_validator(job)(task)


def new_task_validator(job: Json) -> Callable[[TaskAddParameter], None]:
    """:func:`validate_new_task` for many tasks of ``job``: what they share is looked up once."""
    reserved_ids = _reserved_ids(job)

    def validate(task: TaskAddParameter) -> None:
        check_id(task.id)
        reserved = reserved_ids.get(task.id.lower()) if reserved_ids else None
        if reserved:
            raise BatchError(reserved, "The task id is the same as that of the job's preparation or release task.",
                             [("TaskId", task.id)])
        check_display_name(task.displayName)
        if task.resourceFiles or task.environmentSettings or task.userIdentity or task.containerSettings:
            check_task_common(task, "")
        if any(_REFUSABLE(task)):
            check_supported(task, REFUSED_TASK)
        if task.outputFiles:
            check_output_files(task.outputFiles)
        if task.applicationPackageReferences:
            check_application_packages(task.applicationPackageReferences)
        check_constraints(task.constraints)
        if task.requiredSlots is not None and not 1 <= task.requiredSlots <= MAX_SLOTS:
            raise invalid_property("requiredSlots", task.requiredSlots,
                                   f"requiredSlots must be between 1 and {MAX_SLOTS}.")
        if task.multiInstanceSettings is not None:
            if task.requiredSlots not in (None, 1):
                raise invalid_property("requiredSlots", task.requiredSlots,
                                       "A multi-instance task must use exactly 1 slot.")
            count = task.multiInstanceSettings.numberOfInstances
            if count is not None and count < 1:
                raise invalid_property("multiInstanceSettings/numberOfInstances", count, "Must be at least 1.")
        if task.dependsOn is not None:
            _check_dependencies(task, job)
        if task.exitConditions is not None:
            _check_exit_conditions(task, job)

    return validate


def _reserved_ids(job: Json) -> dict[str, str]:
    reserved = {}
    if "jobPreparationTask" in job:
        reserved[job["jobPreparationTask"]["id"].lower()] = "TaskIdSameAsJobPreparationTask"
    if "jobReleaseTask" in job:
        reserved[job["jobReleaseTask"]["id"].lower()] = "TaskIdSameAsJobReleaseTask"
    return reserved


def _check_dependencies(task: TaskAddParameter, job: Json) -> None:
    deps = task.dependsOn
    assert deps is not None
    if not job.get("usesTaskDependencies"):
        raise BatchError(
            "TaskDependenciesNotSpecifiedOnJob",
            "The task has dependencies but the job does not specify usesTaskDependencies.",
            [("TaskId", task.id)],
        )
    ids = deps.taskIds or []
    if sum(len(i) for i in ids) > MAX_DEPENDENCY_IDS_LENGTH:
        raise BatchError(
            "TaskDependencyListTooLong",
            f"The taskIds of dependsOn may total at most {MAX_DEPENDENCY_IDS_LENGTH} characters; use taskIdRanges.",
            [("TaskId", task.id)],
        )
    for i, dep in enumerate(ids):
        check_id(dep, f"dependsOn/taskIds/{i}")
        if dep.lower() == task.id.lower():
            raise invalid_property(f"dependsOn/taskIds/{i}", dep, "A task cannot depend on itself.")
    for i, rng in enumerate(deps.taskIdRanges or ()):
        if rng.start < 0 or rng.end < rng.start:
            raise invalid_property(f"dependsOn/taskIdRanges/{i}", f"{rng.start}-{rng.end}",
                                   "A range needs 0 <= start <= end.")


def _check_exit_conditions(task: TaskAddParameter, job: Json) -> None:
    conditions = task.exitConditions
    assert conditions is not None
    options = [("exitConditions/default", conditions.default),
               ("exitConditions/preProcessingError", conditions.preProcessingError),
               ("exitConditions/fileUploadError", conditions.fileUploadError)]
    options += [(f"exitConditions/exitCodes/{i}/exitOptions", m.exitOptions) for i, m in enumerate(conditions.exitCodes or ())]
    for i, rng in enumerate(conditions.exitCodeRanges or ()):
        if rng.end < rng.start:
            raise invalid_property(f"exitConditions/exitCodeRanges/{i}", f"{rng.start}-{rng.end}", "end must be >= start.")
        options.append((f"exitConditions/exitCodeRanges/{i}/exitOptions", rng.exitOptions))
    if job.get("onTaskFailure", "noaction") == "noaction":
        for where, option in options:
            if option is not None and option.jobAction not in (None, "none"):
                raise invalid_property(
                    f"{where}/jobAction", option.jobAction,
                    "jobAction requires the job's onTaskFailure to be performexitoptionsjobaction.",
                )


def constraints_with_defaults(constraints: Json | None, job: Json) -> Json:
    job_retries = job.get("constraints", {}).get("maxTaskRetryCount", 0)
    return {
        "maxWallClockTime": UNLIMITED_DURATION,
        "retentionTime": SEVEN_DAYS,
        "maxTaskRetryCount": job_retries,
        **(constraints or {}),
    }


def new_task_body(task: TaskAddParameter, job: Json, now: datetime) -> Json:
    """The CloudTask body stored for a new task (without url, eTag, lastModified)."""
    return new_task_bodies(job, now)(task)


def new_task_bodies(job: Json, now: datetime) -> Callable[[TaskAddParameter], Json]:
    """:func:`new_task_body` for many tasks of ``job`` added at ``now``: what they share is computed once."""
    stamp = clock.to_wire(now)
    defaults = constraints_with_defaults(None, job)
    active = TaskState.ACTIVE.value

    def body_of(task: TaskAddParameter) -> Json:
        body = to_json(task)
        constraints = body.get("constraints")
        body["constraints"] = {**defaults, **constraints} if constraints else dict(defaults)
        body.setdefault("requiredSlots", 1)
        if "multiInstanceSettings" in body:
            body["multiInstanceSettings"].setdefault("numberOfInstances", 1)
        body.update(creationTime=stamp, state=active, stateTransitionTime=stamp)
        body["executionInfo"] = {"retryCount": 0, "requeueCount": 0}
        return body

    return body_of


def terminated(body: Json, now: datetime) -> Json:
    """A task ended by user request: completed, with a TaskEnded failure."""
    if body["state"] == TaskState.COMPLETED.value:
        raise BatchError("TaskCompleted", "The specified task is already completed.", [("TaskId", body["id"])])
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(new.get("executionInfo", {}))
    info["endTime"] = clock.to_wire(now)
    info["result"] = "failure"
    info["failureInfo"] = {"category": "usererror", "code": "TaskEnded", "message": "Task was ended by user request."}
    new["executionInfo"] = info
    return new


def reactivated(body: Json, now: datetime) -> Json:
    """A failed completed task made eligible to run again (retry count reset)."""
    info = body.get("executionInfo", {})
    if body["state"] != TaskState.COMPLETED.value:
        raise BatchError("TaskNotCompleted", "The specified task is not in a completed state.", [("TaskId", body["id"])])
    if info.get("result") == "success":
        raise BatchError("TaskSucceeded", "The specified task completed successfully and cannot be reactivated.",
                         [("TaskId", body["id"])])
    new = with_state(body, TaskState.ACTIVE, now)
    new["executionInfo"] = {"retryCount": 0, "requeueCount": info.get("requeueCount", 0)}
    if "lastRequeueTime" in info:
        new["executionInfo"]["lastRequeueTime"] = info["lastRequeueTime"]
    new.pop("nodeInfo", None)
    return new


def retained_until(body: Json, end: datetime | None) -> datetime | None:
    """Until when a completed task's directory stays on its node: ``end`` + its retentionTime (None:
    not completed, or kept for ever). The retention was validated when the task was added; one too
    long to add to a date is for ever."""
    if end is None or body.get("state") != TaskState.COMPLETED:
        return None
    retention = body.get("constraints", {}).get("retentionTime")
    if not retention or retention == UNLIMITED_DURATION:
        return None
    try:
        return end + parse_duration(retention, "retentionTime")
    except OverflowError:
        return None


def with_constraints(body: Json, constraints: TaskConstraints | None, job: Json) -> Json:
    check_constraints(constraints)
    new = dict(body)
    new["constraints"] = constraints_with_defaults(to_json(constraints) if constraints else None, job)
    return new
