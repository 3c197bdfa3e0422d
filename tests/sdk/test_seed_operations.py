"""The two seed operations through azure-batch 15.1: Get Task Counts and List Preparation And Release Task Status.

Task execution and preparation/release runs are reported through the service layer
(what the execution layer's agents call); the API reads them back exactly.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from azure.batch import BatchClient, models as m
# 15.1 does not export it, and an empty one is falsy there: begin_terminate_job then fails client-side.
from azure.batch.models._models import BatchJobTerminateOptions as JobTerminateOptions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.sdk.conftest import uid
from tests.support.live import LiveServer

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _wire(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_job(batch: BatchClient, *, prep: bool = True, release: bool = True, **extra) -> str:
    job_id = uid("job")
    batch.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id="pool"),
            job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/sh -c 'echo prep'") if prep else None,
            job_release_task=m.BatchJobReleaseTask(command_line="/bin/sh -c 'echo release'") if release else None,
            **extra,
        )
    )
    return job_id


def _recount(batch: BatchClient, job_id: str) -> tuple[dict, dict]:
    tasks, slots = Counter(), Counter()
    for task in batch.list_tasks(job_id):
        state = "running" if task.state in ("preparing", "running") else task.state
        buckets = [state]
        result = task.execution_info.result if task.execution_info else None
        if state == "completed" and result:
            buckets.append("succeeded" if result == "success" else "failed")
        for bucket in buckets:
            tasks[bucket] += 1
            slots[bucket] += task.required_slots
    names = ("active", "running", "completed", "succeeded", "failed")
    return {n: tasks[n] for n in names}, {n: slots[n] for n in names}


def _counts(batch: BatchClient, job_id: str) -> tuple[dict, dict]:
    result = batch.get_job_task_counts(job_id)
    names = ("active", "running", "completed", "succeeded", "failed")
    return ({n: getattr(result.task_counts, n) for n in names}, {n: getattr(result.task_slot_counts, n) for n in names})


# -- Get Task Counts ----------------------------------------------------------------------------


def test_task_counts_of_a_new_job_are_zero(batch: BatchClient) -> None:
    job_id = _new_job(batch, prep=False, release=False)
    zero = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    assert _counts(batch, job_id) == (zero, zero)


def test_task_counts_follow_every_transition_and_weight_slots(batch: BatchClient, live: LiveServer) -> None:
    job_id = _new_job(batch, prep=False, release=False, constraints=m.BatchJobConstraints(max_task_retry_count=1))
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true", required_slots=(i % 3) + 1) for i in range(12)
    ]))
    execution = live.services.execution
    node = {"poolId": "pool", "nodeId": "node-1", "affinityId": "node-1", "taskRootDirectory": "workitems/x/t"}

    def check() -> None:
        counts = _counts(batch, job_id)
        assert counts == _recount(batch, job_id)
        for group in counts:
            assert all(value >= 0 for value in group.values())
            assert group["completed"] == group["succeeded"] + group["failed"]

    check()
    execution.task_assigned(live.account, job_id, "t0", node, preparing=True)   # preparing counts as running
    check()
    assert _counts(batch, job_id)[0]["running"] == 1
    execution.task_running(live.account, job_id, "t0")
    execution.task_assigned(live.account, job_id, "t1", node, preparing=False)
    execution.task_assigned(live.account, job_id, "t2", node, preparing=False)
    check()
    execution.task_exited(live.account, job_id, "t0", 0)     # succeeded
    execution.task_exited(live.account, job_id, "t1", 3)     # retried: back to active
    check()
    execution.task_assigned(live.account, job_id, "t1", node, preparing=False)
    execution.task_exited(live.account, job_id, "t1", 3)     # retries exhausted: failed
    execution.task_exited(live.account, job_id, "t2", 0)
    batch.terminate_task(job_id, "t3")                        # failed (TaskEnded)
    batch.delete_task(job_id, "t4")
    check()
    tasks, slots = _counts(batch, job_id)
    assert tasks == {"active": 7, "running": 0, "completed": 4, "succeeded": 2, "failed": 2}
    # requiredSlots = i % 3 + 1: t0 1, t1 2, t2 3, t3 1 completed; t4 (2) deleted
    assert slots["completed"] == 1 + 2 + 3 + 1 and slots["succeeded"] == 1 + 3 and slots["failed"] == 2 + 1
    assert slots["active"] == sum((i % 3) + 1 for i in range(5, 12))
    batch.reactivate_task(job_id, "t3")
    check()
    failed_task = batch.get_task(job_id, "t1")
    assert failed_task.execution_info.retry_count == 1 and failed_task.execution_info.exit_code == 3
    assert failed_task.execution_info.failure_info.code == "FailureExitCode"


def test_task_counts_for_missing_job_is_404(batch: BatchClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        batch.get_job_task_counts(uid("nosuchjob"))
    assert caught.value.error.code == "JobNotFound"


def test_all_tasks_complete_terminates_the_job(batch: BatchClient, live: LiveServer) -> None:
    job_id = _new_job(batch, prep=False, release=False)
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="only", command_line="/bin/true"))
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    assert batch.get_job(job_id).state == "active"
    live.services.execution.task_assigned(live.account, job_id, "only", {"poolId": "p", "nodeId": "n"}, preparing=False)
    live.services.execution.task_exited(live.account, job_id, "only", 0)
    job = batch.get_job(job_id)
    assert job.state == "completed"
    assert job.execution_info.termination_reason == "AllTasksComplete"


# -- List Preparation And Release Task Status ---------------------------------------------------


def _prep_info(i: int, *, completed: bool = True, exit_code: int = 0) -> dict:
    start = T0 + timedelta(minutes=i)
    info = {
        "state": "completed" if completed else "running",
        "startTime": _wire(start),
        "taskRootDirectory": f"workitems/job/job-1/jobpreparation",
        "retryCount": 1 if exit_code else 0,
        "containerInfo": {"containerId": f"c{i}", "state": "exited", "error": ""},
    }
    if exit_code:
        info["lastRetryTime"] = _wire(start + timedelta(seconds=5))
    if completed:
        info.update(endTime=_wire(start + timedelta(seconds=30)), exitCode=exit_code,
                    result="success" if exit_code == 0 else "failure")
        if exit_code:
            info["failureInfo"] = {"category": "usererror", "code": "FailureExitCode", "message": "exit code",
                                   "details": [{"name": "Message", "value": "boom"}]}
    return info


def _release_info(i: int) -> dict:
    start = T0 + timedelta(hours=1, minutes=i)
    return {"state": "completed", "startTime": _wire(start), "endTime": _wire(start + timedelta(seconds=3)),
            "taskRootDirectory": "workitems/job/job-1/jobrelease", "exitCode": 0, "result": "success"}


def test_prep_release_status_has_every_field(batch: BatchClient, live: LiveServer) -> None:
    job_id = _new_job(batch)
    assert list(batch.list_job_preparation_and_release_task_status(job_id)) == []
    record = live.services.prep_release.record
    record(live.account, job_id, "pool", "node-a", "preparation", _prep_info(0))
    record(live.account, job_id, "pool", "node-a", "release", _release_info(0))
    record(live.account, job_id, "pool", "node-b", "preparation", _prep_info(1, exit_code=2))
    record(live.account, job_id, "pool", "node-c", "preparation", _prep_info(2, completed=False))

    entries = {e.node_id: e for e in batch.list_job_preparation_and_release_task_status(job_id)}
    assert sorted(entries) == ["node-a", "node-b", "node-c"]
    a = entries["node-a"]
    assert a.pool_id == "pool"
    assert a.node_url == f"{live.url}/pools/pool/nodes/node-a"
    prep = a.job_preparation_task_execution_info
    assert prep.state == "completed" and prep.exit_code == 0 and prep.result == "success"
    assert prep.start_time == T0 and prep.end_time == T0 + timedelta(seconds=30)
    assert prep.retry_count == 0 and prep.last_retry_time is None
    assert prep.task_root_directory == "workitems/job/job-1/jobpreparation"
    assert prep.task_root_directory_url == f"{live.url}/pools/pool/nodes/node-a/files/workitems/job/job-1/jobpreparation"
    assert prep.container_info.container_id == "c0"
    release = a.job_release_task_execution_info
    assert release.state == "completed" and release.exit_code == 0 and release.result == "success"
    assert release.task_root_directory_url.endswith("/nodes/node-a/files/workitems/job/job-1/jobrelease")
    b = entries["node-b"].job_preparation_task_execution_info
    assert b.result == "failure" and b.exit_code == 2 and b.retry_count == 1
    assert b.failure_info.category == "usererror" and b.failure_info.code == "FailureExitCode"
    assert b.failure_info.details[0].value == "boom"
    assert b.last_retry_time == T0 + timedelta(minutes=1, seconds=5)
    assert entries["node-b"].job_release_task_execution_info is None
    c = entries["node-c"].job_preparation_task_execution_info
    assert c.state == "running" and c.end_time is None and c.exit_code is None and c.result is None


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("nodeId eq 'node-1'", ["node-1"]),
        ("nodeId eq 'NODE-1'", ["node-1"]),
        ("poolId eq 'other'", ["node-4"]),
        ("poolId ne 'other' and nodeId ne 'node-0'", ["node-1", "node-2", "node-3"]),
        ("jobPreparationTaskExecutionInfo/state eq 'running'", ["node-3"]),
        ("jobPreparationTaskExecutionInfo/exitCode gt 0", ["node-2"]),
        ("jobPreparationTaskExecutionInfo/exitCode eq 0", ["node-0", "node-1", "node-4"]),
        ("jobPreparationTaskExecutionInfo/result eq 'failure'", ["node-2"]),
        ("jobPreparationTaskExecutionInfo/startTime ge DateTime'2026-01-02T03:06:05Z'", ["node-2", "node-3", "node-4"]),
        ("jobPreparationTaskExecutionInfo/endTime lt DateTime'Fri, 02 Jan 2026 03:05:36 GMT'", ["node-0", "node-1"]),
        ("jobReleaseTaskExecutionInfo/state eq 'completed'", ["node-0", "node-1"]),
        ("jobReleaseTaskExecutionInfo/exitCode eq 0 or jobPreparationTaskExecutionInfo/result eq 'failure'",
         ["node-0", "node-1", "node-2"]),
        ("not (jobReleaseTaskExecutionInfo/result eq 'success')", ["node-2", "node-3", "node-4"]),
        ("jobReleaseTaskExecutionInfo/result ne 'success'", ["node-2", "node-3", "node-4"]),
    ],
)
def test_prep_release_status_filters(batch: BatchClient, live: LiveServer, flt: str, expected: list[str]) -> None:
    job_id = _new_job(batch)
    record = live.services.prep_release.record
    for i in range(5):
        pool = "other" if i == 4 else "pool"
        info = _prep_info(i, completed=(i != 3), exit_code=(2 if i == 2 else 0))
        record(live.account, job_id, pool, f"node-{i}", "preparation", info)
        if i < 2:
            record(live.account, job_id, pool, f"node-{i}", "release", _release_info(i))
    got = [e.node_id for e in batch.list_job_preparation_and_release_task_status(job_id, filter=flt)]
    assert sorted(got) == expected


def test_prep_release_status_select_and_paging(batch: BatchClient, live: LiveServer) -> None:
    job_id = _new_job(batch, release=False)
    record = live.services.prep_release.record
    total = 1_050
    for i in range(total):
        record(live.account, job_id, f"pool-{i % 3}", f"tvm-{i:05d}", "preparation", _prep_info(i % 50))
    entries = list(batch.list_job_preparation_and_release_task_status(job_id))
    assert len(entries) == total
    assert len({(e.pool_id, e.node_id) for e in entries}) == total
    small = batch.list_job_preparation_and_release_task_status(job_id, max_results=400).by_page()
    sizes = [len(list(page)) for page in small]
    assert sizes == [400, 400, 250]
    selected = list(batch.list_job_preparation_and_release_task_status(
        job_id, select=["nodeId", "jobPreparationTaskExecutionInfo"], max_results=5).by_page())[0]
    first = next(iter(selected))
    assert first.node_id and first.job_preparation_task_execution_info.state == "completed"
    assert first.pool_id is None and first.node_url is None


def test_prep_release_status_errors(batch: BatchClient, live: LiveServer) -> None:
    plain = _new_job(batch, prep=False, release=False)
    with pytest.raises(HttpResponseError) as caught:
        list(batch.list_job_preparation_and_release_task_status(plain))
    assert caught.value.status_code == 409
    assert caught.value.error.code == "JobPreparationTaskNotSpecified"
    with pytest.raises(ResourceNotFoundError) as missing:
        list(batch.list_job_preparation_and_release_task_status(uid("nosuchjob")))
    assert missing.value.error.code == "JobNotFound"
    job_id = _new_job(batch)
    for bad in ("state eq 'completed'", "nodeId gt 'x'", "jobPreparationTaskExecutionInfo/state eq 'bogus'", "nodeId eq"):
        with pytest.raises(HttpResponseError) as invalid:
            list(batch.list_job_preparation_and_release_task_status(job_id, filter=bad))
        assert invalid.value.status_code == 400
        assert invalid.value.error.code == "InvalidQueryParameterValue"


def test_rows_of_nodes_no_longer_in_the_pool_are_kept_and_owe_no_release(batch: BatchClient, live: LiveServer) -> None:
    """A node that ran the preparation task and has since left the pool cannot run the release task:
    the job completes at once, and its row still lists the preparation run."""
    job_id = _new_job(batch)
    live.services.prep_release.record(live.account, job_id, "pool", "node-x", "preparation", _prep_info(0))
    poller = batch.begin_terminate_job(job_id, JobTerminateOptions(termination_reason="UserTerminate"), polling_interval=1)
    poller.result(timeout=30)
    job = batch.get_job(job_id)
    assert job.state == "completed" and job.execution_info.termination_reason == "UserTerminate"
    [entry] = batch.list_job_preparation_and_release_task_status(job_id)
    assert entry.node_id == "node-x" and entry.job_preparation_task_execution_info.state == "completed"
    assert entry.job_release_task_execution_info is None
