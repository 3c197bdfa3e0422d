"""Job schedules end to end through azure-batch 15.1: all 11 operations, the state machine, the jobs
a schedule starts on time, one at a time, and the cascades of terminate and delete.

The live server lets schedules recur every 2 seconds (``--min-interval 2``; Azure's minimum is a
minute), so occurrences come within a test.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import unquote

import httpx
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.exceptions import ResourceNotFoundError

from tests.execution.test_task_lifecycle import _image
from tests.sdk.conftest import API_VERSION, error_values, expect_failure, uid

FAST = {"polling_interval": 0}
SPEC = m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id="sched-pool"), priority=7,
                               metadata=[m.BatchMetadataItem(name="from", value="schedule")])


def wait_for(what: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def add(batch: BatchClient, schedule: m.BatchJobScheduleConfiguration | None = None,
        spec: m.BatchJobSpecification = SPEC, **options: Any) -> str:
    schedule_id = uid("sched")
    batch.create_job_schedule(m.BatchJobScheduleCreateOptions(
        id=schedule_id, schedule=schedule or m.BatchJobScheduleConfiguration(), job_specification=spec, **options))
    return schedule_id


def job_ids(batch: BatchClient, schedule_id: str) -> list[str]:
    return sorted(job.id for job in batch.list_jobs_from_schedule(schedule_id))


def exists(batch: BatchClient, schedule_id: str) -> bool:
    """job_schedule_exists, tolerating azure-batch 15.1's BatchExceptionPolicy, which raises on the 404 of a HEAD
    before job_schedule_exists can turn it into False (the server answers 404 as the spec says)."""
    try:
        return batch.job_schedule_exists(schedule_id)
    except ResourceNotFoundError:
        return False


def end_job(batch: BatchClient, job_id: str) -> None:
    batch.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason="done"), **FAST).result()


def test_a_schedule_starts_its_first_job_at_once_from_its_specification(batch: BatchClient) -> None:
    schedule_id = add(batch, display_name="nightly", metadata=[m.BatchMetadataItem(name="k", value="v")])
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.state == "active" and schedule.display_name == "nightly" and schedule.previous_state is None
    assert schedule.metadata[0].name == "k" and schedule.job_specification.priority == 7
    recent = schedule.execution_info.recent_job
    assert recent.id == f"{schedule_id}:job-1" and unquote(recent.url).endswith(f"/jobs/{schedule_id}:job-1")
    assert schedule.execution_info.next_run_time is None   # it does not recur
    job = batch.get_job(recent.id)
    assert (job.state, job.priority, job.pool_info.pool_id) == ("active", 7, "sched-pool")
    assert job.metadata[0].value == "schedule"
    assert job_ids(batch, schedule_id) == [recent.id]
    assert batch.job_schedule_exists(schedule_id) and not exists(batch, uid("none"))
    listed = {s.id for s in batch.list_job_schedules(filter=f"id eq '{schedule_id}'")}
    assert listed == {schedule_id}
    assert [s.id for s in batch.list_job_schedules(filter=f"id eq '{schedule_id}' and state eq 'completed'")] == []


def test_a_job_is_started_within_a_second_of_do_not_run_until(batch: BatchClient) -> None:
    start = datetime.now(timezone.utc) + timedelta(seconds=2)
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(do_not_run_until=start))
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.execution_info.next_run_time == start and schedule.execution_info.recent_job is None
    assert job_ids(batch, schedule_id) == []
    job_id = wait_for(lambda: job_ids(batch, schedule_id), timeout=5)[0]
    created = batch.get_job(job_id).creation_time
    assert start <= created < start + timedelta(seconds=1), (start, created)


def test_a_recurring_schedule_runs_one_job_at_a_time_and_the_next_when_it_ends(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)))
    first = f"{schedule_id}:job-1"
    assert job_ids(batch, schedule_id) == [first]
    next_run = batch.get_job_schedule(schedule_id).execution_info.next_run_time
    time.sleep(max(0.0, (next_run - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    assert job_ids(batch, schedule_id) == [first]            # the first job still runs: the next waits
    end_job(batch, first)
    second = f"{schedule_id}:job-2"
    wait_for(lambda: second in job_ids(batch, schedule_id), timeout=3)
    assert batch.get_job(first).execution_info.termination_reason == "done"
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.execution_info.recent_job.id == second and schedule.state == "active"
    end_job(batch, second)
    wait_for(lambda: f"{schedule_id}:job-3" in job_ids(batch, schedule_id), timeout=5)
    batch.begin_terminate_job_schedule(schedule_id, **FAST).result()


def test_a_schedule_that_does_not_recur_completes_with_its_job(batch: BatchClient) -> None:
    schedule_id = add(batch)
    end_job(batch, f"{schedule_id}:job-1")
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.state == "completed" and schedule.previous_state == "active"
    assert schedule.execution_info.end_time is not None and schedule.execution_info.next_run_time is None
    expect_failure(lambda: batch.disable_job_schedule(schedule_id), 409, "JobScheduleCompleted")
    expect_failure(lambda: batch.begin_terminate_job_schedule(schedule_id, **FAST).result(), 409,
                   "JobScheduleCompleted")
    filtered = batch.list_job_schedules(filter=f"id eq '{schedule_id}' and state eq 'completed'")
    assert [s.id for s in filtered] == [schedule_id]


def test_disable_stops_new_jobs_and_enable_resumes(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)))
    batch.disable_job_schedule(schedule_id)
    batch.disable_job_schedule(schedule_id)   # already disabled: no change
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.state == "disabled" and schedule.previous_state == "active"
    end_job(batch, f"{schedule_id}:job-1")
    time.sleep(2.5)
    assert job_ids(batch, schedule_id) == [f"{schedule_id}:job-1"]   # no job while disabled
    batch.enable_job_schedule(schedule_id)
    assert batch.get_job_schedule(schedule_id).state == "active"
    wait_for(lambda: f"{schedule_id}:job-2" in job_ids(batch, schedule_id), timeout=4)
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()


def test_terminate_ends_the_running_job_and_completes(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)))
    batch.begin_terminate_job_schedule(schedule_id, **FAST).result()
    schedule = batch.get_job_schedule(schedule_id)
    assert schedule.state == "completed" and schedule.execution_info.end_time is not None
    job = batch.get_job(f"{schedule_id}:job-1")
    assert job.state == "completed" and job.execution_info.termination_reason == "TerminateJobSchedule"
    time.sleep(2.5)
    assert job_ids(batch, schedule_id) == [f"{schedule_id}:job-1"]   # a completed schedule starts nothing
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()


def test_delete_takes_every_job_of_the_schedule_with_it(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)))
    first = f"{schedule_id}:job-1"
    batch.create_task(first, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    end_job(batch, first)
    wait_for(lambda: len(job_ids(batch, schedule_id)) == 2, timeout=4)
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()
    expect_failure(lambda: batch.get_job_schedule(schedule_id), 404, "JobScheduleNotFound")
    expect_failure(lambda: batch.get_job(first), 404, "JobNotFound")
    expect_failure(lambda: list(batch.list_jobs_from_schedule(schedule_id)), 404, "JobScheduleNotFound")


def test_patch_and_update_change_only_later_jobs(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(minutes=10)))
    before = batch.get_job_schedule(schedule_id)
    batch.update_job_schedule(schedule_id, m.BatchJobScheduleUpdateOptions(
        metadata=[m.BatchMetadataItem(name="patched", value="1")]))
    patched = batch.get_job_schedule(schedule_id)
    assert patched.etag != before.etag and patched.metadata[0].name == "patched"
    assert patched.schedule.recurrence_interval == timedelta(minutes=10)    # left as it was
    spec = m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id="other-pool"), priority=1)
    batch.replace_job_schedule(schedule_id, m.BatchJobSchedule(
        schedule=m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)), job_specification=spec))
    replaced = batch.get_job_schedule(schedule_id)
    assert replaced.metadata == [] and replaced.job_specification.pool_info.pool_id == "other-pool"
    assert batch.get_job(f"{schedule_id}:job-1").pool_info.pool_id == "sched-pool"   # the running job keeps its own
    end_job(batch, f"{schedule_id}:job-1")
    job = batch.get_job(wait_for(lambda: f"{schedule_id}:job-2" in job_ids(batch, schedule_id)) and
                        f"{schedule_id}:job-2")
    assert (job.pool_info.pool_id, job.priority) == ("other-pool", 1)
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()


def test_starting_jobs_does_not_change_the_schedules_etag(batch: BatchClient) -> None:
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)))
    etag = batch.get_job_schedule(schedule_id).etag
    end_job(batch, f"{schedule_id}:job-1")
    wait_for(lambda: f"{schedule_id}:job-2" in job_ids(batch, schedule_id), timeout=4)
    assert batch.get_job_schedule(schedule_id).etag == etag
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()


def test_stats_count_the_tasks_of_its_jobs(batch: BatchClient) -> None:
    schedule_id = add(batch)
    stats = batch.get_job_schedule(schedule_id, expand=["stats"]).job_schedule_statistics
    assert stats.succeeded_tasks_count == 0 and stats.url.endswith(f"/jobschedules/{schedule_id}")
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()


def test_a_jobschedule_auto_pool_is_shared_by_its_jobs_and_goes_with_it(batch: BatchClient) -> None:
    pool = m.BatchPoolSpecification(vm_size="standard_d2s_v3", virtual_machine_configuration=_image(),
                                    target_dedicated_nodes=0)
    spec = m.BatchJobSpecification(pool_info=m.BatchPoolInfo(auto_pool_specification=m.BatchAutoPoolSpecification(
        auto_pool_id_prefix="sch", pool_lifetime_option="jobschedule", pool=pool)))
    schedule_id = add(batch, m.BatchJobScheduleConfiguration(recurrence_interval=timedelta(seconds=2)), spec)
    pool_id = batch.get_job(f"{schedule_id}:job-1").execution_info.pool_id
    assert pool_id.startswith("sch_")
    end_job(batch, f"{schedule_id}:job-1")
    assert batch.get_pool(pool_id).state == "active"        # it outlives the job
    wait_for(lambda: f"{schedule_id}:job-2" in job_ids(batch, schedule_id), timeout=4)
    assert batch.get_job(f"{schedule_id}:job-2").execution_info.pool_id == pool_id
    batch.begin_terminate_job_schedule(schedule_id, **FAST).result()

    def gone() -> bool:
        try:
            return batch.get_pool(pool_id).state == "deleting"
        except ResourceNotFoundError:
            return True
    wait_for(gone)


def test_errors_have_the_documented_codes(batch: BatchClient, rest: httpx.Client) -> None:
    schedule_id = add(batch)
    expect_failure(lambda: add_with_id(batch, schedule_id), 409, "JobScheduleExists")
    missing = uid("none")
    for call in (lambda: batch.get_job_schedule(missing), lambda: batch.disable_job_schedule(missing),
                 lambda: batch.enable_job_schedule(missing)):
        expect_failure(call, 404, "JobScheduleNotFound")
    error = expect_failure(lambda: add(batch, m.BatchJobScheduleConfiguration(
        recurrence_interval=timedelta(seconds=1))), 400, "InvalidPropertyValue")
    assert error_values(error)["PropertyName"] == "schedule/recurrenceInterval"
    error = expect_failure(lambda: add(batch, spec=m.BatchJobSpecification(
        pool_info=m.BatchPoolInfo(pool_id="p"), priority=5000)), 400, "InvalidPropertyValue")
    assert error_values(error)["PropertyName"] == "jobSpecification/priority"
    response = rest.post("/jobschedules", params={"api-version": API_VERSION},
                         json={"id": uid("s"), "schedule": {}})
    assert response.status_code == 400 and response.json()["code"] == "MissingRequiredProperty"
    batch.begin_delete_job_schedule(schedule_id, **FAST).result()
    expect_failure(lambda: batch.get_job_schedule(schedule_id), 404, "JobScheduleNotFound")


def add_with_id(batch: BatchClient, schedule_id: str) -> None:
    batch.create_job_schedule(m.BatchJobScheduleCreateOptions(
        id=schedule_id, schedule=m.BatchJobScheduleConfiguration(), job_specification=SPEC))
