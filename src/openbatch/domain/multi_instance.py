"""Multi-instance (MPI) tasks: one task on ``numberOfInstances`` nodes at once.

A round places such a task only when that many nodes of its pool have a free slot (all or none):
the primary (instance 0, the task itself: its nodeInfo and executionInfo) on the first, subtasks
1..N-1 on the others, one per node. Every instance downloads the ``commonResourceFiles`` into the
task's directory (``AZ_BATCH_TASK_SHARED_DIR``, the same path on every node) and runs the
coordination command; once it has succeeded on every instance, the primary runs the task's own
command line (with the task's resource files, downloaded on the primary only). The primary's exit
ends the task (its retries, exit conditions and output files as any task's); the subtasks then
complete and whatever their coordination commands left running is killed. A subtask whose
coordination fails fails the whole task (which is retried up to its maxTaskRetryCount).

In a job with a preparation task, it runs only on nodes where that preparation ran (succeeded, with
waitForSuccess): a round starts the preparation on more nodes while too few have.

Like Azure, such a task needs a pool with ``enableInterNodeCommunication`` and one task slot per
node; openbatch refuses to add one to a job whose pool cannot run it (Azure would leave it active for
ever), and one that runs in a container (not implemented yet).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import clock
from .errors import BatchError
from .execution import exited, failed_to_start
from .support import Refused, unsupported
from .states import TaskState

Json = dict[str, Any]

#: The port of AZ_BATCH_MASTER_NODE (Azure's: reserved for the service, not for MPI's own use).
MASTER_PORT = 6000


_IN_CONTAINER = Refused("multiInstanceSettings", "Multi-instance tasks in containers", "not implemented yet")
_AUTO_STORAGE = Refused("multiInstanceSettings/commonResourceFiles[]/autoStorageContainerName",
                        "Common resource files from the auto-storage account", "not implemented yet; give a "
                        "storageContainerUrl with a SAS or an httpUrl")


def instances(task: Json) -> int:
    """How many nodes the task needs (1 for an ordinary task)."""
    settings = task.get("multiInstanceSettings")
    return int(settings.get("numberOfInstances") or 1) if settings is not None else 1


def pool_problem(pool: Json) -> str | None:
    """Why a pool cannot run multi-instance tasks, or None."""
    if not pool.get("enableInterNodeCommunication"):
        return "The pool's enableInterNodeCommunication is false; multi-instance tasks need it."
    if int(pool.get("taskSlotsPerNode") or 1) > 1:
        return "The pool runs several tasks on a node at once (taskSlotsPerNode > 1); multi-instance tasks need 1."
    return None


def check_task(task: Json, job: Json, pool: Json | None) -> None:
    """A multi-instance task that cannot run where it is added: 400 naming why. ``pool``: the pool its job
    runs on (an existing pool, or the auto pool's specification), when known."""
    if "multiInstanceSettings" not in task:
        return
    if "containerSettings" in task:
        raise unsupported("multiInstanceSettings", _IN_CONTAINER)
    for index, spec in enumerate(task["multiInstanceSettings"].get("commonResourceFiles") or ()):
        if spec.get("autoStorageContainerName"):
            raise unsupported(f"multiInstanceSettings/commonResourceFiles/{index}/autoStorageContainerName",
                              _AUTO_STORAGE)
    problem = pool_problem(pool) if pool is not None else None
    if problem is not None:
        raise BatchError("InvalidPropertyValue", "The value provided for one of the properties in the request body "
                         "is invalid.", [("PropertyName", "multiInstanceSettings"), ("Reason", problem)])


def environment(addresses: list[str], instance: int) -> dict[str, str]:
    """The variables of instance ``instance`` (0: the primary) of a task on nodes with those addresses
    (the primary's first); AZ_BATCH_TASK_SHARED_DIR is the agent's (it knows the node's root)."""
    return {"AZ_BATCH_HOST_LIST": ",".join(addresses), "AZ_BATCH_MASTER_NODE": f"{addresses[0]}:{MASTER_PORT}",
            "AZ_BATCH_IS_CURRENT_NODE_MASTER": "true" if instance == 0 else "false"}


def subtask_dir(task_dir: str, instance: int) -> str:
    """A subtask's own directory (its coordination command's stdout/stderr and wd), as on Azure."""
    return f"{task_dir}/{instance}"


# -- subtask bodies (SubtaskInformation) ---------------------------------------------------------


def subtask_started(instance: int, node_info: Json, now: datetime) -> Json:
    stamp = clock.to_wire(now)
    return {"id": instance, "nodeInfo": node_info, "state": "running", "stateTransitionTime": stamp,
            "startTime": stamp}


def subtask_completed(body: Json, now: datetime, *, exit_code: int | None, failure: Json | None = None,
                      start: str | None = None, end: str | None = None) -> Json:
    """The subtask ended: its coordination command's exit code, or the failure that ended it."""
    if body.get("state") == "completed":
        return body
    stamp = clock.to_wire(now)
    new = {**body, "state": "completed", "previousState": body["state"],
           "previousStateTransitionTime": body["stateTransitionTime"], "stateTransitionTime": stamp,
           "endTime": max(end or stamp, body.get("startTime", ""))}
    if start is not None and start > body.get("startTime", ""):
        new["startTime"] = start
    if exit_code is not None:
        new["exitCode"] = exit_code
    success = failure is None and exit_code == 0
    new["result"] = "success" if success else "failure"
    if not success:
        new["failureInfo"] = failure or _exit_failure(exit_code)
    return new


def ended_with_task(body: Json, now: datetime, coordinated: bool) -> Json:
    """The task ended while the subtask ran: completed with its coordination's success, or, if that had not
    finished yet, as ended by the task's end."""
    if coordinated:
        return subtask_completed(body, now, exit_code=0)
    return subtask_completed(body, now, exit_code=None, failure={
        "category": "usererror", "code": "TaskEnded",
        "message": "The subtask was ended because its multi-instance task ended."})


def failed_by_subtask(task: Json, instance: int, result: Json, now: datetime) -> Json:
    """The task after subtask ``instance`` failed (``result``: its report): it exits with that subtask's exit
    code (retried up to its maxTaskRetryCount), or fails at once when the subtask could not start."""
    code = result.get("exitCode")
    detail = {"name": "SubtaskId", "value": str(instance)}
    if code is None or result.get("preProcessingError"):
        failure = dict(result.get("failure") or {"category": "servererror", "code": "Unknown"})
        failure["details"] = [*failure.get("details", []), detail]
        return failed_to_start(task, failure, now, result.get("endTime"))
    new = exited(task, int(code), now, end=result.get("endTime"))
    if new["state"] == TaskState.COMPLETED.value:
        info = new["executionInfo"]
        failure = dict(info["failureInfo"])
        failure["message"] = f"Subtask {instance} of the multi-instance task exited with exit code {code}"
        failure["details"] = [*failure.get("details", []), detail]
        info["failureInfo"] = failure
    return new


def _exit_failure(code: int | None) -> Json:
    return {"category": "usererror", "code": "FailureExitCode",
            "message": "The task exited with an exit code representing a failure",
            "details": [{"name": "Message", "value": f"The task exited with exit code {code}"}]}
