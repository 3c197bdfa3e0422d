"""What happens to a task when a node runs it: assigned, running, exited (with retries).

Pure functions over the stored CloudTask body; the execution layer reports, the
services apply these in one transaction with the job's counters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import clock
from .errors import BatchError
from .states import TaskState, with_state

Json = dict[str, Any]


def assigned(body: Json, node_info: Json, now: datetime, *, preparing: bool) -> Json:
    """A node took the task: ``preparing`` while the job preparation task must finish first."""
    if body["state"] != TaskState.ACTIVE:
        raise BatchError("OperationInvalidForCurrentState", "Only an active task can be assigned to a node.",
                         [("TaskId", body["id"]), ("TaskState", body["state"])])
    new = with_state(body, TaskState.PREPARING if preparing else TaskState.RUNNING, now)
    new["nodeInfo"] = dict(node_info)
    if not preparing:
        new["executionInfo"] = {**body.get("executionInfo", {}), "startTime": clock.to_wire(now)}
    return new


def running(body: Json, now: datetime) -> Json:
    """Preparation done (or not needed): the task's own process starts."""
    if body["state"] == TaskState.RUNNING:
        return body
    if body["state"] != TaskState.PREPARING:
        raise BatchError("OperationInvalidForCurrentState", "Only a preparing task can start running.",
                         [("TaskId", body["id"]), ("TaskState", body["state"])])
    new = with_state(body, TaskState.RUNNING, now)
    new["executionInfo"] = {**body.get("executionInfo", {}), "startTime": clock.to_wire(now)}
    return new


def exited(body: Json, exit_code: int, now: datetime) -> Json:
    """The task's process ended: completed, or back to active for a retry (maxTaskRetryCount)."""
    if body["state"] != TaskState.RUNNING:
        raise BatchError("OperationInvalidForCurrentState", "Only a running task can exit.",
                         [("TaskId", body["id"]), ("TaskState", body["state"])])
    info = dict(body.get("executionInfo", {}))
    retries = info.get("retryCount", 0)
    allowed = body.get("constraints", {}).get("maxTaskRetryCount", 0)
    stamp = clock.to_wire(now)
    if exit_code != 0 and (allowed == -1 or retries < allowed):
        new = with_state(body, TaskState.ACTIVE, now)
        info.update(retryCount=retries + 1, lastRetryTime=stamp, exitCode=exit_code)
        new["executionInfo"] = info
        return new
    new = with_state(body, TaskState.COMPLETED, now)
    info.update(endTime=stamp, exitCode=exit_code, result="success" if exit_code == 0 else "failure")
    if exit_code != 0:
        info["failureInfo"] = {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": "The task exited with an exit code representing a failure",
            "details": [{"name": "Message", "value": f"The task exited with exit code {exit_code}"}],
        }
    new["executionInfo"] = info
    return new


def requeued(body: Json, now: datetime) -> Json:
    """Back to active because its node went away (pool shrink, node lost, reboot): requeueCount, not retryCount."""
    info = dict(body.get("executionInfo", {}))
    new = with_state(body, TaskState.ACTIVE, now)
    info.update(requeueCount=info.get("requeueCount", 0) + 1, lastRequeueTime=clock.to_wire(now))
    new["executionInfo"] = info
    return new


def ended_by_node_removal(body: Json, now: datetime) -> Json:
    """Completed as failed: its node was removed with nodeDeallocationOption terminate."""
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(body.get("executionInfo", {}))
    info.update(endTime=clock.to_wire(now), result="failure", failureInfo={
        "category": "servererror", "code": "TaskEnded",
        "message": "The task was terminated because its compute node was removed from the pool."})
    new["executionInfo"] = info
    return new


def from_result(body: Json, result: Json, now: datetime) -> Json:
    """Apply what a node reported for a finished run: exit code, or a failure before the process ran."""
    failure = result.get("failure")
    if result.get("exitCode") is None or result.get("preProcessingError"):
        return failed_to_start(body, failure or {"category": "servererror", "code": "Unknown"}, now)
    new = exited(body, int(result["exitCode"]), now)
    if failure and new["state"] == TaskState.COMPLETED and new["executionInfo"].get("result") == "failure":
        new["executionInfo"]["failureInfo"] = failure
    return new


def failed_to_start(body: Json, failure: Json, now: datetime) -> Json:
    """Resource files or launch failed: completed as failed; such errors are not retried."""
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(body.get("executionInfo", {}))
    info.update(endTime=clock.to_wire(now), result="failure", failureInfo=failure)
    new["executionInfo"] = info
    return new
