"""Jobs end to end through azure-batch 15.1: every Job operation, its defaults and its error codes.

Each test makes its own jobs (``uid``) on the shared live server and runs once per
store (SQLite, PostgreSQL). Errors are checked by HTTP status and BatchError code as
the SDK surfaces them (``HttpResponseError`` and its subclasses).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
)

from tests.sdk.conftest import API_VERSION, uid

#: What Azure shows for "no limit" (.NET TimeSpan.MaxValue), as the SDK parses it.
UNLIMITED_WIRE = "P10675199DT2H48M5.4775807S"
FAST = {"polling_interval": 0}
POOL = m.BatchPoolInfo(pool_id="pool-a")


# -- helpers ------------------------------------------------------------------------------------


def expect_error(
    status: int, code: str | None, call: Callable[..., Any], *args: Any, **kwargs: Any
) -> HttpResponseError:
    """Run ``call`` and check it fails with ``status`` and BatchError ``code`` (None: no body, as for 304)."""
    with pytest.raises(HttpResponseError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (str, bytes, dict)):
            list(result)  # list operations fail when iterated
    error = info.value
    assert error.status_code == status, f"expected HTTP {status}, got {error.status_code}: {error.message}"
    if code is not None:
        body = error.response.json()
        assert body["code"] == code, f"expected BatchError {code}, got {body}"
        assert body["message"]["lang"] and body["message"]["value"]
    return error


def error_values(error: HttpResponseError) -> dict[str, str]:
    return {v["key"]: v["value"] for v in error.response.json().get("values", [])}


def new_job(batch: BatchClient, job_id: str | None = None, **options: Any) -> str:
    job_id = job_id or uid("job")
    options.setdefault("pool_info", m.BatchPoolInfo(pool_id="pool-a"))
    batch.create_job(m.BatchJobCreateOptions(id=job_id, **options))
    return job_id


def add_task(batch: BatchClient, job_id: str, task_id: str | None = None) -> str:
    task_id = task_id or uid("task")
    batch.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/true"))
    return task_id


def terminate(batch: BatchClient, job_id: str, reason: str = "Terminated by test", **kwargs: Any) -> None:
    """Terminate through the SDK. azure-batch 15.1 can only send Terminate with a non-empty body:
    without options (or with empty ones) it fails client-side ("No value for given attribute" for
    the content-type header), so the default reason is tested through REST."""
    options = BatchJobTerminateOptions(termination_reason=reason)
    batch.begin_terminate_job(job_id, options, **FAST, **kwargs).result()


def terminate_rest(rest: httpx.Client, job_id: str, **headers: str) -> httpx.Response:
    """Terminate with no body at all, as the REST API allows."""
    return rest.post(f"/jobs/{job_id}/terminate", params={"api-version": API_VERSION},
                     headers={"content-type": "application/json; odata=minimalmetadata", **headers})


REASON = BatchJobTerminateOptions(termination_reason="test")


def disable(batch: BatchClient, job_id: str, how: str = "requeue", **kwargs: Any) -> None:
    batch.begin_disable_job(job_id, m.BatchJobDisableOptions(disable_tasks=how), **FAST, **kwargs).result()


def enable(batch: BatchClient, job_id: str, **kwargs: Any) -> None:
    batch.begin_enable_job(job_id, **FAST, **kwargs).result()


def headers_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The response headers of a call that returns None (create, update, ...)."""
    return call(*args, cls=lambda _response, _body, headers: headers, **kwargs)


# -- Add ----------------------------------------------------------------------------------------


def test_add_job_shows_azure_defaults_on_get(batch: BatchClient, live) -> None:
    job_id = uid("job")
    before = datetime.now().astimezone()
    headers = headers_of(batch.create_job, m.BatchJobCreateOptions(
        id=job_id,
        pool_info=m.BatchPoolInfo(pool_id="pool-a"),
        job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/sh -c 'echo prep'"),
        job_release_task=m.BatchJobReleaseTask(command_line="/bin/sh -c 'echo release'"),
    ))
    assert headers["DataServiceId"] == f"{live.url}/jobs/{job_id}"
    assert headers["ETag"] and headers["Last-Modified"]

    job = batch.get_job(job_id)
    assert job.id == job_id
    assert job.url == f"{live.url}/jobs/{job_id}"
    assert job.etag == headers["ETag"]
    assert job.state == m.BatchJobState.ACTIVE
    assert job.previous_state is None
    assert job.priority == 0
    assert job.max_parallel_tasks == -1
    assert job.allow_task_preemption is False
    assert job.uses_task_dependencies is False
    assert job.all_tasks_complete_mode == m.BatchAllTasksCompleteMode.NO_ACTION
    assert job.task_failure_mode == m.BatchTaskFailureMode.NO_ACTION
    assert job.pool_info.pool_id == "pool-a"
    assert job["constraints"] == {"maxWallClockTime": UNLIMITED_WIRE, "maxTaskRetryCount": 0}
    assert job.constraints.max_task_retry_count == 0
    assert job.constraints.max_wall_clock_time > timedelta(days=10_000_000)
    assert job.creation_time >= before - timedelta(seconds=5)
    assert job.state_transition_time == job.creation_time
    assert job.execution_info.start_time == job.creation_time
    assert job.execution_info.pool_id == "pool-a"
    assert job.execution_info.end_time is None
    assert job.execution_info.termination_reason is None
    assert job.job_statistics is None  # only with $expand=stats

    prep = job.job_preparation_task
    assert prep.id == "jobpreparation"
    assert prep.command_line == "/bin/sh -c 'echo prep'"
    assert prep.wait_for_success is True
    assert prep.rerun_on_node_reboot_after_success is True
    release = job.job_release_task
    assert release.id == "jobrelease"
    assert release.max_wall_clock_time == timedelta(minutes=15)
    assert release.retention_time == timedelta(days=7)


def test_add_job_keeps_the_given_properties(batch: BatchClient) -> None:
    job_id = new_job(
        batch,
        display_name="Render frames",
        priority=-500,
        max_parallel_tasks=4,
        uses_task_dependencies=True,
        constraints=m.BatchJobConstraints(max_wall_clock_time=timedelta(hours=2), max_task_retry_count=3),
        task_failure_mode=m.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION,
        metadata=[m.BatchMetadataItem(name="owner", value="team-a")],
        job_preparation_task=m.BatchJobPreparationTask(
            id="prep", command_line="/bin/true", wait_for_success=False
        ),
        job_release_task=m.BatchJobReleaseTask(
            id="rel", command_line="/bin/true", max_wall_clock_time=timedelta(minutes=5)
        ),
    )
    job = batch.get_job(job_id)
    assert job.display_name == "Render frames"
    assert job.priority == -500
    assert job.max_parallel_tasks == 4
    assert job.uses_task_dependencies is True
    assert job.constraints.max_wall_clock_time == timedelta(hours=2)
    assert job.constraints.max_task_retry_count == 3
    assert job.task_failure_mode == m.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION
    assert [(i.name, i.value) for i in job.metadata] == [("owner", "team-a")]
    assert job.job_preparation_task.id == "prep"
    assert job.job_preparation_task.wait_for_success is False
    assert job.job_preparation_task.rerun_on_node_reboot_after_success is True
    assert job.job_release_task.id == "rel"
    assert job.job_release_task.max_wall_clock_time == timedelta(minutes=5)


def test_add_existing_job_is_409_job_exists_also_by_case(batch: BatchClient) -> None:
    job_id = new_job(batch, uid("Job"))
    for same in (job_id, job_id.upper(), job_id.lower()):
        error = expect_error(409, "JobExists", new_job, batch, same)
        assert isinstance(error, ResourceExistsError)
    # the original keeps its spelling
    assert batch.get_job(job_id.lower()).id == job_id


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("invalid id", {"job_id": "bad id!"}),
        ("id too long", {"job_id": "j" * 65}),
        ("priority 1001", {"priority": 1001}),
        ("priority -1001", {"priority": -1001}),
        ("maxParallelTasks 0", {"max_parallel_tasks": 0}),
        ("maxParallelTasks -2", {"max_parallel_tasks": -2}),
        ("release maxWallClockTime PT16M", {
            "job_preparation_task": m.BatchJobPreparationTask(command_line="/bin/true"),
            "job_release_task": m.BatchJobReleaseTask(
                command_line="/bin/true", max_wall_clock_time=timedelta(minutes=16)
            ),
        }),
        ("release without preparation", {
            "job_release_task": m.BatchJobReleaseTask(command_line="/bin/true"),
        }),
    ],
)
def test_add_invalid_job_is_400(batch: BatchClient, case: str, options: dict) -> None:
    options = dict(options)  # the parameter is shared by both stores' runs
    job_id = options.pop("job_id", None) or uid("job")
    error = expect_error(400, "InvalidPropertyValue", new_job, batch, job_id, **options)
    assert error_values(error)["PropertyName"], case
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", job_id):
        expect_error(404, "JobNotFound", batch.get_job, job_id)  # nothing was created


def test_add_job_without_pool_info_is_400_missing_property(batch: BatchClient, rest: httpx.Client) -> None:
    response = rest.post("/jobs", params={"api-version": API_VERSION}, json={"id": uid("job")},
                         headers={"content-type": "application/json; odata=minimalmetadata"})
    assert response.status_code == 400
    assert response.json()["code"] == "MissingRequiredProperty"
    assert {v["key"]: v["value"] for v in response.json()["values"]}["PropertyName"] == "poolInfo"


# -- missing jobs ---------------------------------------------------------------------------------


def test_every_operation_on_a_missing_job_is_404_job_not_found(batch: BatchClient) -> None:
    missing = uid("missing")
    expect_error(404, "JobNotFound", batch.get_job, missing)
    expect_error(404, "JobNotFound", batch.update_job, missing, m.BatchJobUpdateOptions(priority=1))
    expect_error(404, "JobNotFound", batch.replace_job, missing, m.BatchJob(pool_info=POOL))
    expect_error(404, "JobNotFound", batch.begin_delete_job, missing, **FAST)
    expect_error(404, "JobNotFound", batch.begin_disable_job, missing,
                 m.BatchJobDisableOptions(disable_tasks="requeue"), **FAST)
    expect_error(404, "JobNotFound", batch.begin_enable_job, missing, **FAST)
    expect_error(404, "JobNotFound", batch.begin_terminate_job, missing, REASON, **FAST)
    expect_error(404, "JobNotFound", batch.get_job_task_counts, missing)
    error = expect_error(404, "JobNotFound", batch.create_task, missing,
                         m.BatchTaskCreateOptions(id="t", command_line="x"))
    assert isinstance(error, ResourceNotFoundError)
    expect_error(404, "JobNotFound", batch.list_tasks, missing)


# -- Get ----------------------------------------------------------------------------------------


def test_get_job_with_select_returns_only_the_selected_properties(batch: BatchClient) -> None:
    job_id = new_job(batch, priority=7)
    job = batch.get_job(job_id, select=["id", "state", "priority"])
    assert (job.id, job.state, job.priority) == (job_id, m.BatchJobState.ACTIVE, 7)
    assert set(job.keys()) <= {"odata.metadata", "id", "state", "priority"}
    assert job.pool_info is None and job.constraints is None and job.execution_info is None


def test_get_job_with_expand_stats(batch: BatchClient, live) -> None:
    job_id = new_job(batch)
    job = batch.get_job(job_id, expand=["stats"])
    stats = job.job_statistics
    assert stats is not None
    assert stats.url == f"{live.url}/jobs/{job_id}"
    assert stats.start_time == job.creation_time
    assert stats.last_update_time >= stats.start_time
    assert stats.user_cpu_time == timedelta(0)
    assert stats.kernel_cpu_time == timedelta(0)
    assert stats.wall_clock_time == timedelta(0)
    assert stats.wait_time == timedelta(0)
    assert (stats.read_iops, stats.write_iops, stats.read_io_gib, stats.write_io_gib) == (0, 0, 0.0, 0.0)
    assert (stats.succeeded_tasks_count, stats.failed_tasks_count, stats.task_retries_count) == (0, 0, 0)
    # a failed (terminated) task shows in the statistics
    task_id = add_task(batch, job_id)
    batch.terminate_task(job_id, task_id)
    assert batch.get_job(job_id, expand=["stats"]).job_statistics.failed_tasks_count == 1
    expect_error(400, "InvalidQueryParameterValue", batch.get_job, job_id, expand=["tasks"])


# -- List ---------------------------------------------------------------------------------------


def test_list_jobs_with_filters_select_and_paging(batch: BatchClient) -> None:
    prefix = uid("lst")
    pool = uid("pool")
    ids = [new_job(batch, f"{prefix}-{i}", pool_info=m.BatchPoolInfo(pool_id=pool if i < 2 else "other-pool"))
           for i in range(3)]
    disable(batch, ids[1])

    mine = f"startswith(id,'{prefix}')"
    assert [j.id for j in batch.list_jobs(filter=mine)] == ids
    assert [j.id for j in batch.list_jobs(filter=f"{mine} and state eq 'active'")] == [ids[0], ids[2]]
    assert [j.id for j in batch.list_jobs(filter=f"{mine} and state eq 'disabled'")] == [ids[1]]
    assert [j.id for j in batch.list_jobs(filter=f"executionInfo/poolId eq '{pool}'")] == ids[:2]
    assert [j.id for j in batch.list_jobs(filter=f"executionInfo/poolId eq '{pool.upper()}'")] == ids[:2]
    assert [j.id for j in batch.list_jobs(filter=f"id eq '{ids[2]}'")] == [ids[2]]
    assert list(batch.list_jobs(filter=f"startswith(id,'{prefix}-none')")) == []

    selected = list(batch.list_jobs(filter=mine, select=["id", "state"]))
    expected = [(ids[0], "active"), (ids[1], "disabled"), (ids[2], "active")]
    assert [(j.id, j.state) for j in selected] == expected
    assert all(j.pool_info is None and j.etag is None for j in selected)

    stats = list(batch.list_jobs(filter=mine, expand=["stats"]))
    assert all(j.job_statistics is not None and j.job_statistics.succeeded_tasks_count == 0 for j in stats)

    pages = [[j.id for j in page] for page in batch.list_jobs(filter=mine, max_results=2).by_page()]
    assert pages == [ids[:2], ids[2:]]


@pytest.mark.parametrize(
    "bad", ["nonsense eq 'x'", "state eq 'sleeping'", "id eq", "priority eq 1", "state gt 'active'"]
)
def test_list_jobs_with_a_bad_filter_is_400(batch: BatchClient, bad: str) -> None:
    error = expect_error(400, "InvalidQueryParameterValue", batch.list_jobs, filter=bad)
    assert error_values(error)["QueryParameterName"] == "$filter"


def test_list_jobs_maxresults_out_of_range_is_400(batch: BatchClient) -> None:
    expect_error(400, None, batch.list_jobs, max_results=1001)
    expect_error(400, None, batch.list_jobs, max_results=0)


# -- Patch and Update ---------------------------------------------------------------------------


def test_patch_changes_only_the_given_properties(batch: BatchClient, live) -> None:
    job_id = new_job(
        batch,
        priority=10,
        max_parallel_tasks=3,
        constraints=m.BatchJobConstraints(max_task_retry_count=2),
        metadata=[m.BatchMetadataItem(name="a", value="1")],
    )
    before = batch.get_job(job_id)
    headers = headers_of(batch.update_job, job_id, m.BatchJobUpdateOptions(priority=20))
    assert headers["DataServiceId"] == f"{live.url}/jobs/{job_id}"
    after = batch.get_job(job_id)
    assert after.etag == headers["ETag"] != before.etag
    assert after.priority == 20
    assert after.max_parallel_tasks == 3
    assert after.constraints.max_task_retry_count == 2
    assert [(i.name, i.value) for i in after.metadata] == [("a", "1")]
    assert after.pool_info.pool_id == "pool-a"
    assert after.state == m.BatchJobState.ACTIVE

    batch.update_job(job_id, m.BatchJobUpdateOptions(
        metadata=[m.BatchMetadataItem(name="b", value="2")],
        constraints=m.BatchJobConstraints(max_wall_clock_time=timedelta(hours=1)),
    ))
    after = batch.get_job(job_id)
    assert after.priority == 20
    assert [(i.name, i.value) for i in after.metadata] == [("b", "2")]
    assert after.constraints.max_wall_clock_time == timedelta(hours=1)

    for bad in (m.BatchJobUpdateOptions(priority=1001), m.BatchJobUpdateOptions(max_parallel_tasks=0)):
        expect_error(400, "InvalidPropertyValue", batch.update_job, job_id, bad)
    assert batch.get_job(job_id).priority == 20


def test_patch_on_all_tasks_complete_terminatejob_to_noaction_is_400(batch: BatchClient) -> None:
    job_id = new_job(batch)
    add_task(batch, job_id)  # an active task keeps the job active once terminatejob is set
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = batch.get_job(job_id)
    assert job.all_tasks_complete_mode == m.BatchAllTasksCompleteMode.TERMINATE_JOB
    assert job.state == m.BatchJobState.ACTIVE
    error = expect_error(400, "InvalidPropertyValue", batch.update_job, job_id,
                         m.BatchJobUpdateOptions(all_tasks_complete_mode="noaction"))
    assert error_values(error)["PropertyName"] == "onAllTasksComplete"
    # Update (PUT) that omits it would also reset it to noaction: the same 400
    expect_error(400, "InvalidPropertyValue", batch.replace_job, job_id,
                 m.BatchJob(pool_info=POOL))
    assert batch.get_job(job_id).all_tasks_complete_mode == m.BatchAllTasksCompleteMode.TERMINATE_JOB


def test_pool_info_changes_only_while_the_job_is_disabled(batch: BatchClient) -> None:
    job_id = new_job(batch)
    expect_error(409, None, batch.update_job, job_id,
                 m.BatchJobUpdateOptions(pool_info=m.BatchPoolInfo(pool_id="pool-b")))
    # the same pool is no change
    batch.update_job(job_id, m.BatchJobUpdateOptions(pool_info=m.BatchPoolInfo(pool_id="pool-a")))
    disable(batch, job_id)
    batch.update_job(job_id, m.BatchJobUpdateOptions(pool_info=m.BatchPoolInfo(pool_id="pool-b")))
    job = batch.get_job(job_id)
    assert job.pool_info.pool_id == "pool-b"
    assert job.execution_info.pool_id == "pool-b"
    assert job.state == m.BatchJobState.DISABLED
    enable(batch, job_id)
    expect_error(409, None, batch.replace_job, job_id, m.BatchJob(pool_info=m.BatchPoolInfo(pool_id="c")))


def test_update_replaces_all_updatable_properties(batch: BatchClient, live) -> None:
    job_id = new_job(
        batch,
        priority=100,
        max_parallel_tasks=5,
        allow_task_preemption=True,
        constraints=m.BatchJobConstraints(max_wall_clock_time=timedelta(hours=3), max_task_retry_count=4),
        metadata=[m.BatchMetadataItem(name="keep", value="no")],
        display_name="stays",
    )
    headers = headers_of(batch.replace_job, job_id, m.BatchJob(pool_info=POOL))
    assert headers["DataServiceId"] == f"{live.url}/jobs/{job_id}"
    job = batch.get_job(job_id)
    assert job.etag == headers["ETag"]
    assert job.priority == 0
    assert job.max_parallel_tasks == -1
    assert job.allow_task_preemption is False
    assert job["constraints"] == {"maxWallClockTime": UNLIMITED_WIRE, "maxTaskRetryCount": 0}
    assert not job.metadata
    assert job.all_tasks_complete_mode == m.BatchAllTasksCompleteMode.NO_ACTION
    assert job.display_name == "stays"  # not updatable: untouched

    batch.replace_job(job_id, m.BatchJob(
        pool_info=m.BatchPoolInfo(pool_id="pool-a"),
        priority=-3,
        metadata=[m.BatchMetadataItem(name="x", value="y")],
        constraints=m.BatchJobConstraints(max_task_retry_count=-1),
    ))
    job = batch.get_job(job_id)
    assert job.priority == -3
    assert [(i.name, i.value) for i in job.metadata] == [("x", "y")]
    assert job.constraints.max_task_retry_count == -1
    expect_error(400, "InvalidPropertyValue", batch.replace_job, job_id,
                 m.BatchJob(pool_info=m.BatchPoolInfo(pool_id="pool-a"), priority=1001))


def test_update_with_the_job_read_back_from_get(batch: BatchClient) -> None:
    """The usual SDK pattern: get, change, replace."""
    job_id = new_job(batch, priority=1, metadata=[m.BatchMetadataItem(name="k", value="v")],
                     job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"))
    job = batch.get_job(job_id)
    job.priority = 9
    job.max_parallel_tasks = 2
    batch.replace_job(job_id, job)
    after = batch.get_job(job_id)
    assert (after.priority, after.max_parallel_tasks) == (9, 2)
    assert [(i.name, i.value) for i in after.metadata] == [("k", "v")]
    assert after.job_preparation_task.id == "jobpreparation"
    assert after.creation_time == job.creation_time
    assert after.etag != job.etag


# -- the state machine --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["requeue", "terminate", "wait"])
def test_disable_and_enable(batch: BatchClient, how: str) -> None:
    job_id = new_job(batch)
    task_id = add_task(batch, job_id)
    created = batch.get_job(job_id)
    enable(batch, job_id)  # enabling an active job is allowed and changes nothing
    assert batch.get_job(job_id).as_dict() == created.as_dict()
    assert created.previous_state is None  # docs: not set while the job is in its initial active state

    disable(batch, job_id, how)
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.DISABLED
    assert job.previous_state is not None
    assert job.state_transition_time >= created.state_transition_time
    assert job.previous_state_transition_time is not None
    assert batch.get_task(job_id, task_id).state == m.BatchTaskState.ACTIVE  # not running: untouched

    disable(batch, job_id, "wait")  # disabling a disabled job is allowed and changes nothing
    assert batch.get_job(job_id).as_dict() == job.as_dict()
    # tasks can still be added to a disabled job
    add_task(batch, job_id)

    enable(batch, job_id)
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.ACTIVE
    assert job.previous_state in (m.BatchJobState.ENABLING, m.BatchJobState.DISABLED)
    enable(batch, job_id)
    assert batch.get_job(job_id).as_dict() == job.as_dict()
    assert batch.get_job_task_counts(job_id).task_counts.active == 2


def test_disable_with_an_unknown_option_is_400(batch: BatchClient) -> None:
    job_id = new_job(batch)
    expect_error(400, None, batch.begin_disable_job, job_id,
                 m.BatchJobDisableOptions(disable_tasks="pause"), **FAST)
    assert batch.get_job(job_id).state == m.BatchJobState.ACTIVE


def test_terminate_completes_the_job_with_user_terminate(
    batch: BatchClient, rest: httpx.Client, live
) -> None:
    job_id = new_job(batch)
    task_id = add_task(batch, job_id)
    response = terminate_rest(rest, job_id)
    assert response.status_code == 202, response.text
    assert response.headers["DataServiceId"] == f"{live.url}/jobs/{job_id}"
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    job = batch.get_job(job_id)
    assert job.etag == response.headers["ETag"]
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "UserTerminate"
    assert job.execution_info.end_time is not None
    assert job.execution_info.end_time >= job.execution_info.start_time
    assert job.state_transition_time == job.execution_info.end_time
    # its active task stays active (and is never scheduled)
    assert batch.get_task(job_id, task_id).state == m.BatchTaskState.ACTIVE

    assert terminate_rest(rest, job_id).json()["code"] == "JobCompleted"
    expect_error(409, "JobCompleted", batch.begin_terminate_job, job_id, REASON, **FAST)
    expect_error(409, "JobCompleted", batch.begin_disable_job, job_id,
                 m.BatchJobDisableOptions(disable_tasks="requeue"), **FAST)
    expect_error(409, "JobCompleted", batch.begin_enable_job, job_id, **FAST)
    expect_error(409, "JobCompleted", batch.create_task, job_id,
                 m.BatchTaskCreateOptions(id="late", command_line="x"))
    expect_error(409, "JobCompleted", batch.create_task_collection, job_id,
                 m.BatchTaskGroup(task_values=[m.BatchTaskCreateOptions(id="late", command_line="x")]))
    assert batch.get_job(job_id).state == m.BatchJobState.COMPLETED


def test_terminate_with_a_reason_and_from_disabled(batch: BatchClient) -> None:
    job_id = new_job(batch)
    disable(batch, job_id)
    terminate(batch, job_id, "Finished early", force=True, service_timeout=5)
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.COMPLETED
    assert job.previous_state in (m.BatchJobState.TERMINATING, m.BatchJobState.DISABLED)
    assert job.execution_info.termination_reason == "Finished early"
    assert [j.id for j in batch.list_jobs(filter=f"id eq '{job_id}' and state eq 'completed'")] == [job_id]


def test_delete_job_removes_it_and_its_tasks(batch: BatchClient) -> None:
    job_id = new_job(batch)
    add_task(batch, job_id)
    poller = batch.begin_delete_job(job_id, **FAST)
    poller.result()
    assert poller.done() and poller.status() == "Succeeded"
    expect_error(404, "JobNotFound", batch.get_job, job_id)
    expect_error(404, "JobNotFound", batch.get_job_task_counts, job_id)
    expect_error(404, "JobNotFound", batch.list_tasks, job_id)
    assert list(batch.list_jobs(filter=f"id eq '{job_id}'")) == []
    expect_error(404, "JobNotFound", batch.begin_delete_job, job_id, **FAST)
    # the id is free again, and the new job starts empty
    new_job(batch, job_id)
    assert list(batch.list_tasks(job_id)) == []
    assert batch.get_job_task_counts(job_id).task_counts.active == 0


def test_delete_completed_and_disabled_jobs(batch: BatchClient) -> None:
    done, off = new_job(batch), new_job(batch)
    terminate(batch, done)
    disable(batch, off)
    for job_id in (done, off):
        batch.begin_delete_job(job_id, force=True, service_timeout=10, **FAST).result()
        expect_error(404, "JobNotFound", batch.get_job, job_id)


def test_all_tasks_complete_terminatejob_completes_the_job(batch: BatchClient) -> None:
    job_id = new_job(batch)
    first, second = add_task(batch, job_id), add_task(batch, job_id)
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    batch.terminate_task(job_id, first)
    assert batch.get_job(job_id).state == m.BatchJobState.ACTIVE  # one task left
    batch.terminate_task(job_id, second)
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert job.execution_info.end_time is not None


def test_all_tasks_complete_terminatejob_set_on_finished_tasks_completes_at_once(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.terminate_task(job_id, add_task(batch, job_id))
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "AllTasksComplete"


def test_all_tasks_complete_terminatejob_on_a_job_without_tasks_completes_it(batch: BatchClient) -> None:
    """Docs: "if a Job contains no Tasks, then all Tasks are considered complete"."""
    job_id = new_job(batch, all_tasks_complete_mode="terminatejob")
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "AllTasksComplete"
    expect_error(409, "JobCompleted", add_task, batch, job_id)


def test_all_tasks_complete_by_deleting_the_last_active_task(batch: BatchClient) -> None:
    job_id = new_job(batch)
    done, pending = add_task(batch, job_id), add_task(batch, job_id)
    batch.terminate_task(job_id, done)
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    assert batch.get_job(job_id).state == m.BatchJobState.ACTIVE
    batch.delete_task(job_id, pending)
    job = batch.get_job(job_id)
    assert job.state == m.BatchJobState.COMPLETED
    assert job.execution_info.termination_reason == "AllTasksComplete"


# -- conditional requests -----------------------------------------------------------------------


def test_if_match_with_a_stale_etag_is_412_on_patch_update_and_delete(batch: BatchClient) -> None:
    job_id = new_job(batch)
    stale = batch.get_job(job_id).etag
    batch.update_job(job_id, m.BatchJobUpdateOptions(priority=1))
    current = batch.get_job(job_id).etag
    assert current != stale

    stale_kw = {"etag": stale, "match_condition": MatchConditions.IfNotModified}
    error = expect_error(412, "ConditionNotMet", batch.update_job, job_id,
                         m.BatchJobUpdateOptions(priority=2), **stale_kw)
    assert isinstance(error, ResourceModifiedError)
    expect_error(412, "ConditionNotMet", batch.replace_job, job_id,
                 m.BatchJob(pool_info=POOL), **stale_kw)
    expect_error(412, "ConditionNotMet", batch.begin_disable_job, job_id,
                 m.BatchJobDisableOptions(disable_tasks="requeue"), **FAST, **stale_kw)
    expect_error(412, "ConditionNotMet", batch.begin_terminate_job, job_id, REASON, **FAST, **stale_kw)
    expect_error(412, "ConditionNotMet", batch.begin_delete_job, job_id, **FAST, **stale_kw)
    job = batch.get_job(job_id)
    assert (job.priority, job.state, job.etag) == (1, m.BatchJobState.ACTIVE, current)

    # the current ETag passes
    batch.update_job(job_id, m.BatchJobUpdateOptions(priority=3), etag=current,
                     match_condition=MatchConditions.IfNotModified)
    assert batch.get_job(job_id).priority == 3
    latest = batch.get_job(job_id).etag
    batch.begin_delete_job(job_id, etag=latest, match_condition=MatchConditions.IfNotModified,
                           **FAST).result()
    expect_error(404, "JobNotFound", batch.get_job, job_id)


def test_if_none_match_and_if_modified_since_on_get_are_304(batch: BatchClient) -> None:
    job_id = new_job(batch)
    job = batch.get_job(job_id)
    error = expect_error(304, None, batch.get_job, job_id,
                         etag=job.etag, match_condition=MatchConditions.IfModified)
    # azure-batch 15.1's BatchExceptionPolicy maps 304 to ResourceModifiedError (not ResourceNotModifiedError)
    assert isinstance(error, (ResourceModifiedError, ResourceNotModifiedError))
    assert not error.response.text()
    expect_error(304, None, batch.get_job, job_id, if_modified_since=job.last_modified)
    # a different ETag or an older date returns the job
    assert batch.get_job(job_id, etag='"0x1"', match_condition=MatchConditions.IfModified).id == job_id
    assert batch.get_job(job_id, if_modified_since=job.last_modified - timedelta(seconds=2)).id == job_id
    assert batch.get_job(job_id, etag=job.etag, match_condition=MatchConditions.IfNotModified).id == job_id


def test_if_unmodified_since_before_the_last_change_is_412(batch: BatchClient) -> None:
    job_id = new_job(batch)
    job = batch.get_job(job_id)
    expect_error(412, "ConditionNotMet", batch.update_job, job_id, m.BatchJobUpdateOptions(priority=5),
                 if_unmodified_since=job.last_modified - timedelta(seconds=2))
    batch.update_job(job_id, m.BatchJobUpdateOptions(priority=5),
                     if_unmodified_since=job.last_modified + timedelta(seconds=2))
    assert batch.get_job(job_id).priority == 5


def test_etag_and_last_modified_move_with_every_change(batch: BatchClient) -> None:
    job_id = new_job(batch)
    seen = [batch.get_job(job_id)]
    steps = [
        lambda: batch.update_job(job_id, m.BatchJobUpdateOptions(priority=1)),
        lambda: batch.replace_job(job_id, m.BatchJob(pool_info=POOL, priority=2)),
        lambda: disable(batch, job_id),
        lambda: enable(batch, job_id),
        lambda: terminate(batch, job_id),
    ]
    for step in steps:
        step()
        seen.append(batch.get_job(job_id))
    etags = [j.etag for j in seen]
    assert len(set(etags)) == len(etags), etags
    stamps = [j.last_modified for j in seen]
    assert all(a < b for a, b in zip(stamps, stamps[1:])), stamps
    # a read changes nothing
    assert batch.get_job(job_id).etag == etags[-1]
