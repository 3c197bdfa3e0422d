"""Resource states and which operation is allowed from which state.

The job rules come from the Job operations' documentation: each action lists the
states it may start from, and every other state maps to the documented 409 code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from . import clock
from .errors import BatchError


class JobState(StrEnum):
    ACTIVE = "active"
    DISABLING = "disabling"
    DISABLED = "disabled"
    ENABLING = "enabling"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


class TaskState(StrEnum):
    ACTIVE = "active"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"


class PoolState(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"


class AllocationState(StrEnum):
    STEADY = "steady"
    RESIZING = "resizing"
    STOPPING = "stopping"


_JOB_STATE_ERROR: dict[JobState, tuple[str, str]] = {
    JobState.DELETING: ("JobBeingDeleted", "The specified job has been marked for deletion and is being garbage collected."),
    JobState.TERMINATING: ("JobBeingTerminated", "The specified job is being terminated."),
    JobState.COMPLETED: ("JobCompleted", "The specified job is already in a completed state."),
    JobState.DISABLING: ("JobNotActive", "The specified job is not in an active state."),
    JobState.DISABLED: ("JobNotActive", "The specified job is not in an active state."),
    JobState.ENABLING: ("JobNotActive", "The specified job is not in an active state."),
}

#: The states each job action may start from.
JOB_ACTION_FROM: dict[str, frozenset[JobState]] = {
    "update": frozenset({JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED, JobState.ENABLING}),
    "disable": frozenset({JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED}),
    "enable": frozenset({JobState.DISABLED, JobState.ENABLING, JobState.ACTIVE}),
    "terminate": frozenset({JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED, JobState.ENABLING}),
    "delete": frozenset(set(JobState) - {JobState.DELETING}),
    "add_task": frozenset({JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED, JobState.ENABLING}),
    "change_task": frozenset({JobState.ACTIVE, JobState.DISABLING, JobState.DISABLED, JobState.ENABLING}),
}


def check_job_action(action: str, state: JobState) -> None:
    """Raise the documented 409 when ``action`` is not allowed while the job is in ``state``."""
    if state in JOB_ACTION_FROM[action]:
        return
    if action == "enable" and state in (JobState.TERMINATING, JobState.COMPLETED, JobState.DELETING):
        code, message = _JOB_STATE_ERROR[state]
    elif action == "enable":
        code, message = "JobNotActive", "The specified job is not in a disabled state."
    else:
        code, message = _JOB_STATE_ERROR.get(state, ("OperationInvalidForCurrentState", "The operation is not allowed in the current state."))
    raise BatchError(code, message, [("JobState", state.value)])


def with_state(body: dict[str, Any], state: StrEnum, now: datetime) -> dict[str, Any]:
    """A job or task body after a state change, keeping previousState and both transition times."""
    value = state._value_  # the plain str (``.value`` is a slow descriptor on 3.11 enums)
    if body.get("state") == value:
        return body
    new = dict(body)
    new["previousState"] = body["state"]
    new["previousStateTransitionTime"] = body["stateTransitionTime"]
    new["state"] = value
    new["stateTransitionTime"] = clock.to_wire(now)
    return new
