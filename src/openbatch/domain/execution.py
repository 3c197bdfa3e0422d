"""What happens to a task when a node runs it: assigned, running, exited (with retries).

Pure functions over the stored CloudTask body; the execution layer reports, the
services apply these in one transaction with the job's counters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import clock
from .errors import BatchError
from .output_files import is_upload_failure
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


#: A difference between the node's and the server's clock below this is the network's delay, not skew.
CLOCK_SKEW_TOLERANCE = timedelta(seconds=1)


def clock_offset(sent_at: str | None, now: datetime) -> timedelta:
    """What to add to a node's times to put them on the server's clock (zero within the tolerance)."""
    if not sent_at:
        return timedelta(0)
    try:
        skew = now - clock.from_wire(sent_at)
    except ValueError:
        return timedelta(0)
    return skew if abs(skew) > CLOCK_SKEW_TOLERANCE else timedelta(0)


def node_times(result: Json, now: datetime, offset: timedelta) -> tuple[str, str]:
    """When a run really started and ended, as its node measured them, on the server's clock:
    shifted by ``offset``, never after ``now``, the start never after the end (``now`` for a time the
    node did not report, or could not be read)."""
    def read(name: str) -> datetime:
        text = result.get(name)
        try:
            value = clock.from_wire(text) + offset if text else now
        except ValueError:
            value = now
        return min(value, now)

    end = read("endTime")
    start = min(read("startTime"), end)
    return clock.to_wire(start), clock.to_wire(end)


def with_run_times(info: Json, start: str | None, end: str | None, now: datetime) -> str:
    """Put the node's ``start`` into ``info`` (in place; never before the run was assigned, the
    ``startTime`` already there) and return the run's end (never before its start; ``now`` when the
    node said none). Times in wire form, which sort as strings."""
    if start is not None and start > info.get("startTime", ""):
        info["startTime"] = start
    return max(end or clock.to_wire(now), info.get("startTime", ""))


def exited(body: Json, exit_code: int, now: datetime, start: str | None = None, end: str | None = None) -> Json:
    """The task's process ended: completed, or back to active for a retry (maxTaskRetryCount).
    ``start``/``end``: when the node ran it (wire form), else the server's ``now``."""
    if body["state"] != TaskState.RUNNING:
        raise BatchError("OperationInvalidForCurrentState", "Only a running task can exit.",
                         [("TaskId", body["id"]), ("TaskState", body["state"])])
    info = dict(body.get("executionInfo", {}))
    retries = info.get("retryCount", 0)
    allowed = body.get("constraints", {}).get("maxTaskRetryCount", 0)
    stamp = clock.to_wire(now)
    end = with_run_times(info, start, end, now)
    if exit_code != 0 and (allowed == -1 or retries < allowed):
        new = with_state(body, TaskState.ACTIVE, now)
        info.update(retryCount=retries + 1, lastRetryTime=stamp, exitCode=exit_code)
        new["executionInfo"] = info
        return new
    new = with_state(body, TaskState.COMPLETED, now)
    info.update(endTime=end, exitCode=exit_code, result="success" if exit_code == 0 else "failure")
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


#: How many times a task is run again because its node was lost (Azure: "retries due to recovery
#: operations are not counted against maxTaskRetryCount"); the next loss fails it, so a task that
#: takes its node down cannot loop for ever.
MAX_NODE_RECOVERIES = 3


def recovered(body: Json, now: datetime, recoveries: int) -> Json:
    """The task's node was lost while it ran (``recoveries`` times now, this one included): it runs
    again elsewhere (requeueCount + 1, not retryCount), or fails once it has been lost too often."""
    if recoveries <= MAX_NODE_RECOVERIES:
        return requeued(body, now)
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(body.get("executionInfo", {}))
    info.update(endTime=clock.to_wire(now), result="failure", failureInfo={
        "category": "servererror", "code": "NodeUnusable",
        "message": f"The compute node running the task was lost {recoveries} times; it is not run again.",
        "details": [{"name": "Recoveries", "value": str(recoveries)}]})
    new["executionInfo"] = info
    return new


def unassigned(body: Json, now: datetime) -> Json:
    """Back to active without having started (it waited on its node for the job preparation task)."""
    new = with_state(body, TaskState.ACTIVE, now)
    new.pop("nodeInfo", None)
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
    """Apply what a node reported for a finished run: exit code, or a failure before the process ran
    (its ``startTime``/``endTime``, on the server's clock, when given: see :func:`node_times`), and the
    container it ran in (``containerInfo``)."""
    new = _applied(body, result, now)
    if result.get("containerInfo"):
        new["executionInfo"] = {**new.get("executionInfo", {}), "containerInfo": result["containerInfo"]}
    return new


def _applied(body: Json, result: Json, now: datetime) -> Json:
    failure = result.get("failure")
    if result.get("exitCode") is None or result.get("preProcessingError"):
        return failed_to_start(body, failure or {"category": "servererror", "code": "Unknown"}, now,
                               result.get("endTime"))
    if is_upload_failure(failure):
        return upload_failed(body, int(result["exitCode"]), failure, now, result.get("startTime"),
                             result.get("endTime"))
    new = exited(body, int(result["exitCode"]), now, result.get("startTime"), result.get("endTime"))
    if failure and new["state"] == TaskState.COMPLETED and new["executionInfo"].get("result") == "failure":
        new["executionInfo"]["failureInfo"] = failure
    return new


def upload_failed(body: Json, exit_code: int, failure: Json, now: datetime, start: str | None = None,
                  end: str | None = None) -> Json:
    """The process ended but its output files could not be uploaded: completed as failed with the
    upload's failure and the process's exit code; upload errors are not retried (Azure)."""
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(body.get("executionInfo", {}))
    info.update(endTime=with_run_times(info, start, end, now), exitCode=exit_code, result="failure",
                failureInfo=failure)
    new["executionInfo"] = info
    return new


def failed_to_start(body: Json, failure: Json, now: datetime, end: str | None = None) -> Json:
    """Resource files or launch failed: completed as failed; such errors are not retried."""
    new = with_state(body, TaskState.COMPLETED, now)
    info = dict(body.get("executionInfo", {}))
    info.update(endTime=with_run_times(info, None, end, now), result="failure", failureInfo=failure)
    new["executionInfo"] = info
    return new
