"""The pure rules of multi-instance tasks: where they may run, their variables, their subtasks' states."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openbatch.domain import multi_instance as mi
from openbatch.domain.errors import BatchError

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 12, 6, 12, 1, tzinfo=timezone.utc)


def _task(**extra: object) -> dict:
    return {"id": "t", "state": "running", "stateTransitionTime": "2026-12-06T11:59:00.000000Z", "requiredSlots": 1,
            "multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "true"},
            "executionInfo": {"startTime": "2026-12-06T11:59:00.000000Z", "retryCount": 0, "requeueCount": 0},
            **extra}


def test_instances() -> None:
    assert mi.instances({"id": "plain"}) == 1
    assert mi.instances(_task()) == 3


@pytest.mark.parametrize(("pool", "problem"), [
    ({"enableInterNodeCommunication": True, "taskSlotsPerNode": 1}, None),
    ({"enableInterNodeCommunication": False, "taskSlotsPerNode": 1}, "enableInterNodeCommunication"),
    ({"enableInterNodeCommunication": True, "taskSlotsPerNode": 4}, "taskSlotsPerNode"),
])
def test_pool_problem(pool: dict, problem: str | None) -> None:
    found = mi.pool_problem(pool)
    assert (found is None) if problem is None else (problem in found)


def test_check_task_refuses_what_cannot_run() -> None:
    pool = {"enableInterNodeCommunication": True}
    mi.check_task(_task(), {"id": "j"}, pool)
    mi.check_task(_task(), {"id": "j"}, None)   # the pool is not known yet
    mi.check_task(_task(), {"id": "j", "jobPreparationTask": {"commandLine": "x"}}, pool)
    auto = _task()
    auto["multiInstanceSettings"]["commonResourceFiles"] = [{"autoStorageContainerName": "inputs"}]
    for task, job, code in [(_task(containerSettings={"imageName": "x"}), {}, "UnsupportedProperty"),
                            (auto, {}, "UnsupportedProperty"),
                            (_task(), {}, None)]:
        with pytest.raises(BatchError) as refused:
            mi.check_task(task, job, pool if code else {"enableInterNodeCommunication": False})
        assert refused.value.code == (code or "InvalidPropertyValue")


def test_environment() -> None:
    assert mi.environment(["10.0.0.4", "10.0.0.5"], 1) == {
        "AZ_BATCH_HOST_LIST": "10.0.0.4,10.0.0.5", "AZ_BATCH_MASTER_NODE": "10.0.0.4:6000",
        "AZ_BATCH_IS_CURRENT_NODE_MASTER": "false"}
    assert mi.environment(["10.0.0.4"], 0)["AZ_BATCH_IS_CURRENT_NODE_MASTER"] == "true"


def test_subtask_states() -> None:
    started = mi.subtask_started(2, {"nodeId": "n2"}, NOW)
    assert started["state"] == "running" and started["id"] == 2
    done = mi.ended_with_task(started, LATER, coordinated=True)
    assert (done["state"], done["previousState"], done["exitCode"], done["result"]) == (
        "completed", "running", 0, "success")
    assert mi.ended_with_task(done, LATER, coordinated=False) is done   # completed stays so
    cut = mi.ended_with_task(started, LATER, coordinated=False)
    assert cut["result"] == "failure" and cut["failureInfo"]["code"] == "TaskEnded" and "exitCode" not in cut
    failed = mi.subtask_completed(started, LATER, exit_code=7)
    assert failed["failureInfo"]["code"] == "FailureExitCode" and failed["exitCode"] == 7


def test_a_failed_subtask_fails_the_task_or_retries_it() -> None:
    retried = mi.failed_by_subtask(_task(constraints={"maxTaskRetryCount": 1}), 2, {"exitCode": 3}, NOW)
    assert retried["state"] == "active" and retried["executionInfo"]["retryCount"] == 1
    failed = mi.failed_by_subtask(_task(), 2, {"exitCode": 3}, NOW)
    info = failed["executionInfo"]
    assert (failed["state"], info["exitCode"], info["result"]) == ("completed", 3, "failure")
    assert {"name": "SubtaskId", "value": "2"} in info["failureInfo"]["details"]
    unstarted = mi.failed_by_subtask(_task(constraints={"maxTaskRetryCount": 3}), 1, {
        "exitCode": None, "preProcessingError": True,
        "failure": {"category": "usererror", "code": "BlobNotFound", "message": "no"}}, NOW)
    assert unstarted["state"] == "completed" and unstarted["executionInfo"]["failureInfo"]["code"] == "BlobNotFound"
