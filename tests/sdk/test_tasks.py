"""Tasks end to end through azure-batch 15.1: every Task operation, its defaults and its error codes.

After each step that moves tasks, Get Task Counts must equal a recount from List Tasks
(task and slot counts; slots weighted by requiredSlots). Each test makes its own job
(``uid``) on the shared live server and runs once per store (SQLite, PostgreSQL).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

from tests.sdk.conftest import API_VERSION, uid
from tests.sdk.test_jobs import UNLIMITED_WIRE, error_values, expect_error, headers_of, new_job

COUNT_NAMES = ("active", "running", "completed", "succeeded", "failed")
JSON = {"content-type": "application/json; odata=minimalmetadata"}


# -- helpers ------------------------------------------------------------------------------------


def task(task_id: str, **options: Any) -> m.BatchTaskCreateOptions:
    options.setdefault("command_line", "/bin/true")
    return m.BatchTaskCreateOptions(id=task_id, **options)


def recount(batch: BatchClient, job_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Task and slot counts computed from List Tasks."""
    tasks, slots = Counter(), Counter()
    for item in batch.list_tasks(job_id):
        state = "running" if item.state in ("preparing", "running") else item.state
        buckets = [state]
        result = item.execution_info.result if item.execution_info else None
        if state == "completed" and result:
            buckets.append("succeeded" if result == "success" else "failed")
        for bucket in buckets:
            tasks[bucket] += 1
            slots[bucket] += item.required_slots
    return {n: tasks[n] for n in COUNT_NAMES}, {n: slots[n] for n in COUNT_NAMES}


def counts(batch: BatchClient, job_id: str) -> tuple[dict[str, int], dict[str, int]]:
    result = batch.get_job_task_counts(job_id)
    return ({n: getattr(result.task_counts, n) for n in COUNT_NAMES},
            {n: getattr(result.task_slot_counts, n) for n in COUNT_NAMES})


def check_counts(batch: BatchClient, job_id: str, **expected: int) -> None:
    """Get Task Counts equals the recount; ``expected`` pins some task counts (e.g. active=2)."""
    got = counts(batch, job_id)
    assert got == recount(batch, job_id), "task counts differ from a recount of List Tasks"
    for name, value in expected.items():
        kind, _, bucket = name.rpartition("_")
        assert got[1 if kind == "slot" else 0][bucket] == value, f"{name}: {got}"


def post_collection(rest: httpx.Client, job_id: str, body: bytes | dict) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return rest.post(f"/jobs/{job_id}/addtaskcollection", params={"api-version": API_VERSION},
                     content=content, headers=JSON)


# -- Add ----------------------------------------------------------------------------------------


def test_add_task_shows_defaults_on_get(batch: BatchClient, live) -> None:
    job_id = new_job(batch, constraints=m.BatchJobConstraints(max_task_retry_count=3))
    task_id = uid("task")
    before = datetime.now().astimezone()
    headers = headers_of(batch.create_task, job_id, task(task_id, command_line="/bin/sh -c 'echo hi'"))
    url = f"{live.url}/jobs/{job_id}/tasks/{task_id}"
    assert headers["DataServiceId"] == url
    assert headers["ETag"] and headers["Last-Modified"]

    got = batch.get_task(job_id, task_id)
    assert got.id == task_id
    assert got.url == url
    assert got.etag == headers["ETag"]
    assert got.command_line == "/bin/sh -c 'echo hi'"
    assert got.state == m.BatchTaskState.ACTIVE
    assert got.previous_state is None
    assert got.creation_time >= before - timedelta(seconds=5)
    assert got.state_transition_time == got.creation_time
    assert got.required_slots == 1
    assert got["constraints"] == {
        "maxWallClockTime": UNLIMITED_WIRE, "retentionTime": "P7D", "maxTaskRetryCount": 3,
    }
    assert got.constraints.retention_time == timedelta(days=7)
    assert got.constraints.max_task_retry_count == 3  # inherited from the job's constraints
    info = got.execution_info
    assert (info.retry_count, info.requeue_count) == (0, 0)
    assert (info.start_time, info.end_time, info.result, info.exit_code) == (None, None, None, None)
    assert got.node_info is None
    assert got.task_statistics is None
    check_counts(batch, job_id, active=1, slot_active=1)


def test_add_task_keeps_the_given_properties(batch: BatchClient) -> None:
    job_id = new_job(batch, uses_task_dependencies=True,
                     task_failure_mode=m.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION)
    batch.create_task(job_id, task("base"))
    batch.create_task(job_id, task(
        "full",
        display_name="Frame 1",
        required_slots=3,
        constraints=m.BatchTaskConstraints(
            max_wall_clock_time=timedelta(minutes=30), max_task_retry_count=-1
        ),
        environment_settings=[m.EnvironmentSetting(name="FRAME", value="1")],
        depends_on=m.BatchTaskDependencies(
            task_ids=["base"], task_id_ranges=[m.BatchTaskIdRange(start=1, end=9)]
        ),
        exit_conditions=m.ExitConditions(default=m.ExitOptions(job_action="terminate")),
    ))
    got = batch.get_task(job_id, "full")
    assert got.display_name == "Frame 1"
    assert got.required_slots == 3
    assert got.constraints.max_wall_clock_time == timedelta(minutes=30)
    assert got.constraints.max_task_retry_count == -1
    assert got.constraints.retention_time == timedelta(days=7)
    assert [(e.name, e.value) for e in got.environment_settings] == [("FRAME", "1")]
    assert got.depends_on.task_ids == ["base"]
    assert [(r.start, r.end) for r in got.depends_on.task_id_ranges] == [(1, 9)]
    assert got.exit_conditions.default.job_action == "terminate"
    check_counts(batch, job_id, active=2, slot_active=4)


def test_add_existing_task_is_409_task_exists_also_by_case(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("Render-A"))
    for same in ("Render-A", "render-a", "RENDER-A"):
        expect_error(409, "TaskExists", batch.create_task, job_id, task(same))
    assert batch.get_task(job_id, "render-a").id == "Render-A"
    check_counts(batch, job_id, active=1)


def test_task_ids_of_the_preparation_and_release_tasks_are_reserved(batch: BatchClient) -> None:
    job_id = new_job(batch, job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"),
                     job_release_task=m.BatchJobReleaseTask(command_line="/bin/true"))
    expect_error(409, "TaskIdSameAsJobPreparationTask", batch.create_task, job_id, task("jobpreparation"))
    expect_error(409, "TaskIdSameAsJobPreparationTask", batch.create_task, job_id, task("JobPreparation"))
    expect_error(409, "TaskIdSameAsJobReleaseTask", batch.create_task, job_id, task("jobrelease"))
    custom = new_job(batch,
                     job_preparation_task=m.BatchJobPreparationTask(id="setup", command_line="/bin/true"),
                     job_release_task=m.BatchJobReleaseTask(id="cleanup", command_line="/bin/true"))
    expect_error(409, "TaskIdSameAsJobPreparationTask", batch.create_task, custom, task("SETUP"))
    expect_error(409, "TaskIdSameAsJobReleaseTask", batch.create_task, custom, task("cleanup"))
    batch.create_task(custom, task("jobpreparation"))  # the default ids are free when not used
    check_counts(batch, job_id, active=0)
    check_counts(batch, custom, active=1)


def test_dependencies_need_uses_task_dependencies_on_the_job(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("a"))
    expect_error(400, "TaskDependenciesNotSpecifiedOnJob", batch.create_task, job_id,
                 task("b", depends_on=m.BatchTaskDependencies(task_ids=["a"])))
    check_counts(batch, job_id, active=1)


def test_dependency_ids_longer_than_64000_characters_are_400(batch: BatchClient) -> None:
    job_id = new_job(batch, uses_task_dependencies=True)
    ids = [f"{i:04d}".ljust(64, "x") for i in range(1001)]  # 64,064 characters in all
    expect_error(400, "TaskDependencyListTooLong", batch.create_task, job_id,
                 task("many", depends_on=m.BatchTaskDependencies(task_ids=ids)))
    batch.create_task(job_id, task("enough", depends_on=m.BatchTaskDependencies(task_ids=ids[:1000])))
    assert len(batch.get_task(job_id, "enough").depends_on.task_ids) == 1000


def test_exit_condition_job_action_needs_perform_exit_options_on_the_job(batch: BatchClient) -> None:
    job_id = new_job(batch)  # onTaskFailure noaction
    for conditions in (
        m.ExitConditions(default=m.ExitOptions(job_action="terminate")),
        m.ExitConditions(exit_codes=[
            m.ExitCodeMapping(code=3, exit_options=m.ExitOptions(job_action="disable")),
        ]),
    ):
        error = expect_error(400, "InvalidPropertyValue", batch.create_task, job_id,
                             task(uid("t"), exit_conditions=conditions))
        assert error_values(error)["PropertyName"].endswith("jobAction")
    # exit conditions without a job action are fine
    batch.create_task(job_id, task("ok", exit_conditions=m.ExitConditions(
        exit_codes=[m.ExitCodeMapping(code=1, exit_options=m.ExitOptions(dependency_action="satisfy"))])))
    [mapping] = batch.get_task(job_id, "ok").exit_conditions.exit_codes
    assert mapping.exit_options.dependency_action == "satisfy"
    check_counts(batch, job_id, active=1)


@pytest.mark.parametrize(
    ("case", "options", "code"),
    [
        ("requiredSlots 0", {"required_slots": 0}, "InvalidPropertyValue"),
        ("invalid id", {"id": "bad id"}, "InvalidPropertyValue"),
        ("id too long", {"id": "t" * 65}, "InvalidPropertyValue"),
        ("negative retry count", {"constraints": m.BatchTaskConstraints(max_task_retry_count=-2)},
         "InvalidPropertyValue"),
        ("no command line", {"command_line": None}, "MissingRequiredProperty"),
    ],
)
def test_add_invalid_task_is_400(batch: BatchClient, case: str, options: dict, code: str) -> None:
    job_id = new_job(batch)
    options = dict(options)
    task_id = options.pop("id", uid("t"))
    command_line = options.pop("command_line", "/bin/true")
    new = m.BatchTaskCreateOptions(id=task_id, command_line=command_line, **options)
    expect_error(400, code, batch.create_task, job_id, new)
    assert list(batch.list_tasks(job_id)) == [], case
    check_counts(batch, job_id, active=0)


# -- Add Collection -----------------------------------------------------------------------------


def test_add_collection_of_100_tasks_reports_each(batch: BatchClient, live) -> None:
    job_id = new_job(batch)
    ids = [f"t{i:03d}" for i in range(100)]
    result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task(i, required_slots=3 if n % 10 == 0 else 1) for n, i in enumerate(ids)]))
    values = result.result_values
    assert sorted(v.task_id for v in values) == ids
    etags = set()
    for value in values:
        assert value.status == m.BatchTaskAddStatus.SUCCESS
        assert value.error is None
        assert value.location == f"{live.url}/jobs/{job_id}/tasks/{value.task_id}"
        assert value.last_modified is not None
        got = batch.get_task(job_id, value.task_id)
        assert got.etag == value.etag
        assert got.last_modified == value.last_modified
        etags.add(value.etag)
    assert len(etags) == 100
    check_counts(batch, job_id, active=100, slot_active=120)


def test_add_collection_with_valid_invalid_and_duplicate_tasks(batch: BatchClient) -> None:
    job_id = new_job(batch, job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"))
    batch.create_task(job_id, task("exists"))
    result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task("good-1"),
        task("bad id"),
        task("EXISTS"),
        task("good-2", required_slots=2),
        task("twice"),
        task("TWICE"),
        task("slots", required_slots=0),
        m.BatchTaskCreateOptions(id="no-command"),
        task("deps", depends_on=m.BatchTaskDependencies(task_ids=["good-1"])),
        task("jobpreparation"),
    ]))
    by_id: dict[str, list] = {}
    for value in result.result_values:
        by_id.setdefault(value.task_id, []).append(value)
    assert sorted(by_id) == sorted([
        "good-1", "bad id", "EXISTS", "good-2", "twice", "TWICE", "slots", "no-command", "deps",
        "jobpreparation",
    ])

    def failed(task_id: str, code: str) -> None:
        [value] = by_id[task_id]
        assert value.status == m.BatchTaskAddStatus.CLIENT_ERROR, (task_id, value)
        assert value.error.code == code, (task_id, value.error)
        assert value.error.message.value
        assert value.etag is None and value.location is None

    for ok in ("good-1", "good-2", "twice"):
        [value] = by_id[ok]
        assert value.status == m.BatchTaskAddStatus.SUCCESS and value.etag and value.location, value
    failed("bad id", "InvalidPropertyValue")
    failed("EXISTS", "TaskExists")
    failed("TWICE", "TaskExists")
    failed("slots", "InvalidPropertyValue")
    failed("no-command", "MissingRequiredProperty")
    failed("deps", "TaskDependenciesNotSpecifiedOnJob")
    failed("jobpreparation", "TaskIdSameAsJobPreparationTask")
    assert sorted(t.id for t in batch.list_tasks(job_id)) == ["exists", "good-1", "good-2", "twice"]
    check_counts(batch, job_id, active=4, slot_active=5)


def test_add_collection_of_101_tasks_is_413(batch: BatchClient, rest: httpx.Client) -> None:
    job_id = new_job(batch)
    tasks = [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(101)]
    response = post_collection(rest, job_id, {"value": tasks})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "RequestBodyTooLarge"
    assert list(batch.list_tasks(job_id)) == []
    check_counts(batch, job_id, active=0)


def test_add_collection_larger_than_1_mb_is_413(batch: BatchClient, rest: httpx.Client) -> None:
    job_id = new_job(batch)
    big = "/bin/echo " + "x" * 11_000
    body = json.dumps({"value": [{"id": f"t{i}", "commandLine": big} for i in range(100)]}).encode()
    assert len(body) > 1024 * 1024
    response = post_collection(rest, job_id, body)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "RequestBodyTooLarge"
    assert list(batch.list_tasks(job_id)) == []
    # just under the limit is fine
    small = "/bin/echo " + "x" * 9_000
    body = json.dumps({"value": [{"id": f"t{i}", "commandLine": small} for i in range(100)]}).encode()
    assert len(body) < 1_000_000
    response = post_collection(rest, job_id, body)
    assert response.status_code == 200, response.text
    assert {v["status"] for v in response.json()["value"]} == {"success"}
    check_counts(batch, job_id, active=100)


def test_add_collection_to_missing_or_completed_job(batch: BatchClient, rest: httpx.Client) -> None:
    group = m.BatchTaskGroup(task_values=[task("a")])
    expect_error(404, "JobNotFound", batch.create_task_collection, uid("missing"), group)
    job_id = new_job(batch)
    response = post_collection(rest, job_id, b'{"value": [')
    assert response.status_code == 400 and response.json()["code"] == "InvalidRequestBody"
    response = post_collection(rest, job_id, {"value": ["not a task"]})
    assert response.status_code == 400


def test_create_tasks_helper_adds_250_tasks(batch: BatchClient) -> None:
    job_id = new_job(batch)
    ids = [f"bulk-{i:04d}" for i in range(250)]
    result = batch.create_tasks(job_id, [task(i) for i in ids])
    assert len(result.result_values) == 250
    assert {v.status for v in result.result_values} == {m.BatchTaskAddStatus.SUCCESS}
    assert sorted(v.task_id for v in result.result_values) == ids
    assert [t.id for t in batch.list_tasks(job_id, select=["id"])] == ids
    check_counts(batch, job_id, active=250, slot_active=250)


def test_create_tasks_helper_halves_chunks_on_413(batch: BatchClient) -> None:
    """The SDK helper reacts to 413 RequestBodyTooLarge by resending smaller chunks."""
    job_id = new_job(batch)
    big = "/bin/echo " + "x" * 11_000  # 100 of these exceed 1 MB, 50 do not
    ids = [f"big-{i:03d}" for i in range(100)]
    result = batch.create_tasks(job_id, [task(i, command_line=big) for i in ids])
    assert sorted(v.task_id for v in result.result_values) == ids
    assert {v.status for v in result.result_values} == {m.BatchTaskAddStatus.SUCCESS}
    assert batch.get_task(job_id, "big-042").command_line == big
    check_counts(batch, job_id, active=100)


def test_create_tasks_helper_reports_the_tasks_that_failed(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t-007"))
    tasks = [task(f"t-{i:03d}") for i in range(150)] + [task("bad id"), task("zero", required_slots=0)]
    with pytest.raises(m.CreateTasksError) as info:
        batch.create_tasks(job_id, tasks)
    failures = {f.task_id: f.error.code for f in info.value.failure_tasks}
    # TaskExists is not a failure for the helper (a retry may have added the task)
    assert failures == {"bad id": "InvalidPropertyValue", "zero": "InvalidPropertyValue"}
    assert not info.value.errors
    assert len(list(batch.list_tasks(job_id, select=["id"]))) == 150
    check_counts(batch, job_id, active=150)


# -- List ---------------------------------------------------------------------------------------


def test_list_more_than_1000_tasks_pages_without_gaps(batch: BatchClient, live) -> None:
    job_id = new_job(batch)
    ids = [f"task-{i:05d}" for i in range(1205)]
    batch.create_tasks(job_id, [task(i) for i in ids], max_concurrency=4)

    pages = [[t.id for t in page] for page in batch.list_tasks(job_id).by_page()]
    assert [len(p) for p in pages] == [1000, 205]
    listed = [i for page in pages for i in page]
    assert listed == ids  # ordered by id, no duplicates, nothing missing

    pages = [[t.id for t in page] for page in batch.list_tasks(job_id, max_results=100).by_page()]
    assert [len(p) for p in pages] == [100] * 12 + [5]
    assert [i for page in pages for i in page] == ids

    first = batch.list_tasks(job_id, max_results=3, select=["id", "url"]).by_page()
    expected = [(i, f"{live.url}/jobs/{job_id}/tasks/{i}") for i in ids[:3]]
    assert [(t.id, t.url) for t in next(first)] == expected
    check_counts(batch, job_id, active=1205)


def test_list_tasks_with_filters_and_select(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task("alpha-1"), task("alpha-2"), task("beta-1"), task("Beta-2")]))
    batch.terminate_task(job_id, "alpha-2")
    batch.terminate_task(job_id, "Beta-2")

    def ids(**kw: Any) -> list[str]:
        return [t.id for t in batch.list_tasks(job_id, **kw)]

    assert ids() == ["alpha-1", "alpha-2", "beta-1", "Beta-2"]
    assert ids(filter="state eq 'active'") == ["alpha-1", "beta-1"]
    assert ids(filter="state eq 'completed'") == ["alpha-2", "Beta-2"]
    assert ids(filter="startswith(id,'alpha')") == ["alpha-1", "alpha-2"]
    assert ids(filter="startswith(id,'beta')") == ["beta-1", "Beta-2"]
    assert ids(filter="executionInfo/result eq 'failure'") == ["alpha-2", "Beta-2"]
    assert ids(filter="executionInfo/result eq 'success'") == []
    assert ids(filter="state eq 'completed' and startswith(id,'beta')") == ["Beta-2"]
    assert ids(filter="id eq 'alpha-1' or id eq 'beta-1'") == ["alpha-1", "beta-1"]

    selected = list(batch.list_tasks(job_id, select=["id", "state"], filter="startswith(id,'alpha')"))
    assert [(t.id, t.state) for t in selected] == [("alpha-1", "active"), ("alpha-2", "completed")]
    assert all(t.command_line is None and t.constraints is None and t.etag is None for t in selected)

    stats = list(batch.list_tasks(job_id, expand=["stats"]))
    assert all(t.task_statistics.wall_clock_time == timedelta(0) for t in stats)

    for bad in ("state eq 'done'", "commandLine eq 'x'", "startswith(state,'a')",
                "executionInfo/result eq 1"):
        expect_error(400, "InvalidQueryParameterValue", batch.list_tasks, job_id, filter=bad)
    check_counts(batch, job_id, active=2, completed=2, failed=2)


def test_list_orders_ids_case_insensitively_by_code_point(batch: BatchClient) -> None:
    """Both stores list in the same order: lower-cased id, compared by code point."""
    job_id = new_job(batch)
    ids = ["Z_9", "a-1", "a_1", "A0", "_x", "-y", "b", "B-", "0"]
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[task(i) for i in ids]))
    expected = sorted(ids, key=str.lower)
    assert [t.id for t in batch.list_tasks(job_id)] == expected
    pages = [[t.id for t in page] for page in batch.list_tasks(job_id, max_results=2).by_page()]
    assert [i for page in pages for i in page] == expected
    assert [t.id for t in batch.list_tasks(job_id, filter="startswith(id,'a')")] == ["a-1", "A0", "a_1"]


# -- Get, Update ----------------------------------------------------------------------------------


def test_get_task_with_select_and_expand(batch: BatchClient, live) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t"))
    got = batch.get_task(job_id, "t", select=["id", "state"])
    assert (got.id, got.state) == ("t", "active")
    assert got.command_line is None and got.url is None
    got = batch.get_task(job_id, "t", expand=["stats"])
    stats = got.task_statistics
    assert stats.url == f"{live.url}/jobs/{job_id}/tasks/t"
    assert stats.start_time == got.creation_time
    assert (stats.read_iops, stats.write_iops) == (0, 0)
    assert stats.user_cpu_time == timedelta(0) and stats.wait_time == timedelta(0)


def test_update_task_replaces_the_constraints(batch: BatchClient, live) -> None:
    job_id = new_job(batch, constraints=m.BatchJobConstraints(max_task_retry_count=2))
    batch.create_task(job_id, task("t", constraints=m.BatchTaskConstraints(retention_time=timedelta(days=1))))
    before = batch.get_task(job_id, "t")
    headers = headers_of(batch.replace_task, job_id, "t", m.BatchTask(
        constraints=m.BatchTaskConstraints(max_wall_clock_time=timedelta(hours=1), max_task_retry_count=5)))
    assert headers["DataServiceId"] == f"{live.url}/jobs/{job_id}/tasks/t"
    got = batch.get_task(job_id, "t")
    assert got.etag == headers["ETag"] != before.etag
    assert got.last_modified > before.last_modified
    assert got.constraints.max_wall_clock_time == timedelta(hours=1)
    assert got.constraints.max_task_retry_count == 5
    assert got.constraints.retention_time == timedelta(days=7)  # not given: back to the default
    assert got.command_line == before.command_line and got.state == before.state

    batch.replace_task(job_id, "t", m.BatchTask())  # no constraints: all defaults
    got = batch.get_task(job_id, "t")
    assert got["constraints"] == {
        "maxWallClockTime": UNLIMITED_WIRE, "retentionTime": "P7D", "maxTaskRetryCount": 2,
    }

    # the SDK can also send back what it read
    got.constraints.max_task_retry_count = 1
    batch.replace_task(job_id, "t", got)
    assert batch.get_task(job_id, "t").constraints.max_task_retry_count == 1

    expect_error(400, "InvalidPropertyValue", batch.replace_task, job_id, "t",
                 m.BatchTask(constraints=m.BatchTaskConstraints(max_task_retry_count=-5)))
    check_counts(batch, job_id, active=1)


# -- Terminate, Reactivate, Delete --------------------------------------------------------------


def test_terminate_and_reactivate_a_task(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task("one"), task("big", required_slots=3), task("other", required_slots=2)]))
    check_counts(batch, job_id, active=3, slot_active=6)

    before = batch.get_task(job_id, "big")
    batch.terminate_task(job_id, "big")
    got = batch.get_task(job_id, "big")
    assert got.state == m.BatchTaskState.COMPLETED
    assert got.previous_state == m.BatchTaskState.ACTIVE
    assert got.previous_state_transition_time == before.state_transition_time
    assert got.state_transition_time > before.state_transition_time
    assert got.etag != before.etag
    info = got.execution_info
    assert info.result == "failure"
    assert info.failure_info.code == "TaskEnded"
    assert info.failure_info.category == "usererror"
    assert info.failure_info.message
    assert info.end_time == got.state_transition_time
    check_counts(batch, job_id, active=2, completed=1, failed=1, succeeded=0,
                 slot_active=3, slot_completed=3, slot_failed=3)

    expect_error(409, "TaskCompleted", batch.terminate_task, job_id, "big")
    expect_error(409, "TaskNotCompleted", batch.reactivate_task, job_id, "one")
    check_counts(batch, job_id, active=2, completed=1)

    batch.reactivate_task(job_id, "big")
    got = batch.get_task(job_id, "big")
    assert got.state == m.BatchTaskState.ACTIVE
    assert got.previous_state == m.BatchTaskState.COMPLETED
    info = got.execution_info
    assert info.retry_count == 0 and info.requeue_count == 0
    assert (info.result, info.failure_info, info.end_time, info.exit_code) == (None, None, None, None)
    check_counts(batch, job_id, active=3, completed=0, failed=0, slot_active=6)

    batch.terminate_task(job_id, "other")
    batch.terminate_task(job_id, "big")
    check_counts(batch, job_id, active=1, completed=2, failed=2,
                 slot_active=1, slot_completed=5, slot_failed=5)


def test_reactivate_is_refused_once_the_job_is_completed(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t"))
    batch.terminate_task(job_id, "t")
    batch.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason="done"),
                              polling_interval=0).result()
    expect_error(409, "JobCompleted", batch.reactivate_task, job_id, "t")
    assert batch.get_task(job_id, "t").state == m.BatchTaskState.COMPLETED
    check_counts(batch, job_id, completed=1, failed=1)


def test_delete_task(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task("keep"), task("gone", required_slots=3), task("done", required_slots=2)]))
    batch.terminate_task(job_id, "done")
    check_counts(batch, job_id, active=2, completed=1, slot_active=4)

    batch.delete_task(job_id, "gone")
    expect_error(404, "TaskNotFound", batch.get_task, job_id, "gone")
    check_counts(batch, job_id, active=1, completed=1, slot_active=1, slot_completed=2)
    batch.delete_task(job_id, "DONE")  # ids are case-insensitive
    expect_error(404, "TaskNotFound", batch.delete_task, job_id, "done")
    check_counts(batch, job_id, active=1, completed=0, failed=0, slot_active=1, slot_completed=0)
    assert [t.id for t in batch.list_tasks(job_id)] == ["keep"]
    # the id can be used again
    batch.create_task(job_id, task("gone"))
    check_counts(batch, job_id, active=2)


def test_list_subtasks_of_a_task_is_empty(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t"))
    assert list(batch.list_subtasks(job_id, "t")) == []


def test_every_operation_on_a_missing_task_is_404_task_not_found(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("present"))
    for missing in ("absent", uid("t")):
        expect_error(404, "TaskNotFound", batch.get_task, job_id, missing)
        expect_error(404, "TaskNotFound", batch.replace_task, job_id, missing, m.BatchTask())
        expect_error(404, "TaskNotFound", batch.delete_task, job_id, missing)
        expect_error(404, "TaskNotFound", batch.terminate_task, job_id, missing)
        expect_error(404, "TaskNotFound", batch.reactivate_task, job_id, missing)
        expect_error(404, "TaskNotFound", batch.list_subtasks, job_id, missing)
    other = uid("missing-job")
    expect_error(404, "JobNotFound", batch.get_task, other, "present")
    expect_error(404, "JobNotFound", batch.terminate_task, other, "present")
    expect_error(404, "JobNotFound", batch.list_subtasks, other, "present")
    check_counts(batch, job_id, active=1)


# -- conditional requests -----------------------------------------------------------------------


def test_task_conditional_requests(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t"))
    stale = batch.get_task(job_id, "t").etag
    batch.replace_task(job_id, "t", m.BatchTask(constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    current = batch.get_task(job_id, "t")
    assert current.etag != stale

    stale_kw = {"etag": stale, "match_condition": MatchConditions.IfNotModified}
    expect_error(412, "ConditionNotMet", batch.replace_task, job_id, "t", m.BatchTask(), **stale_kw)
    expect_error(412, "ConditionNotMet", batch.terminate_task, job_id, "t", **stale_kw)
    expect_error(412, "ConditionNotMet", batch.delete_task, job_id, "t", **stale_kw)
    expect_error(304, None, batch.get_task, job_id, "t",
                 etag=current.etag, match_condition=MatchConditions.IfModified)
    assert batch.get_task(job_id, "t").etag == current.etag

    batch.terminate_task(job_id, "t", etag=current.etag, match_condition=MatchConditions.IfNotModified)
    terminated = batch.get_task(job_id, "t")
    assert terminated.etag != current.etag and terminated.last_modified > current.last_modified
    batch.reactivate_task(job_id, "t", etag=terminated.etag, match_condition=MatchConditions.IfNotModified)
    latest = batch.get_task(job_id, "t").etag
    batch.delete_task(job_id, "t", etag=latest, match_condition=MatchConditions.IfNotModified)
    expect_error(404, "TaskNotFound", batch.get_task, job_id, "t")
    check_counts(batch, job_id, active=0)


def test_task_operations_on_a_disabled_job(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("t"))
    options = m.BatchJobDisableOptions(disable_tasks="requeue")
    batch.begin_disable_job(job_id, options, polling_interval=0).result()
    batch.create_task(job_id, task("u"))
    batch.terminate_task(job_id, "t")
    batch.reactivate_task(job_id, "t")
    check_counts(batch, job_id, active=2)


def test_errors_carry_the_batch_error_shape(batch: BatchClient) -> None:
    job_id = new_job(batch)
    batch.create_task(job_id, task("dup"))
    with pytest.raises(HttpResponseError) as info:
        batch.create_task(job_id, task("dup"))
    body = info.value.response.json()
    assert body["code"] == "TaskExists"
    assert body["message"]["lang"] == "en-US"
    assert "RequestId:" in body["message"]["value"]
    assert info.value.response.headers["request-id"] in body["message"]["value"]
