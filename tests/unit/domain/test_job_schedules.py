"""When a job schedule's jobs are due (domain/job_schedules.py: plan), and its validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openbatch.domain import clock
from openbatch.domain.errors import BatchError
from openbatch.domain.job_schedules import ScheduleState, check_action, job_id, plan, validate_new_schedule
from openbatch.domain.models import JobScheduleAddParameter, decode

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def body(**schedule: str) -> dict:
    return {"id": "s", "schedule": schedule}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_schedule_without_times_starts_one_job_at_once_and_then_has_nothing_left() -> None:
    step = plan(body(), T0, 0, T0, job_running=False)
    assert step.create_job and step.next_index == 1 and step.exhausted and step.next_run is None
    assert plan(body(), T0, 1, at(5), job_running=True).exhausted


def test_do_not_run_until_waits_for_its_time() -> None:
    step = plan(body(), at(10), 0, T0, job_running=False)
    assert not step.create_job and step.due_at == at(10) and step.next_run == at(10)
    assert plan(body(), at(10), 0, at(10), job_running=False).create_job


def test_a_recurring_schedule_starts_each_occurrence_and_says_when_the_next_is() -> None:
    schedule = body(recurrenceInterval="PT5M")
    first = plan(schedule, T0, 0, T0, job_running=False)
    assert first.create_job and first.next_index == 1 and first.next_run == at(5) and first.due_at == at(5)
    assert not first.exhausted
    second = plan(schedule, T0, 1, at(5.5), job_running=False)
    assert second.create_job and second.next_index == 2 and second.next_run == at(10)


def test_an_occurrence_waits_for_the_running_job_within_its_window_then_is_lost() -> None:
    schedule = body(recurrenceInterval="PT5M", startWindow="PT2M")
    waiting = plan(schedule, T0, 1, at(6), job_running=True)
    assert not waiting.create_job and waiting.next_index == 1 and waiting.due_at == at(7)
    assert plan(schedule, T0, 1, at(6.5), job_running=False).create_job   # the job ended in the window
    lost = plan(schedule, T0, 1, at(7), job_running=False)
    assert not lost.create_job and lost.next_index == 2 and lost.due_at == at(10)


def test_without_a_start_window_a_due_job_is_never_carried_into_the_next_interval() -> None:
    schedule = body(recurrenceInterval="PT5M")
    waiting = plan(schedule, T0, 1, at(6), job_running=True)
    assert waiting.due_at == at(10)     # the window of occurrence 1 ends where occurrence 2 begins
    moved_on = plan(schedule, T0, 1, at(10), job_running=True)
    assert moved_on.next_index == 2 and moved_on.due_at == at(15)


def test_missed_occurrences_are_skipped_and_started_once_after_a_long_pause() -> None:
    """A server down for 23 minutes: only the occurrence whose window is open now starts a job."""
    schedule = body(recurrenceInterval="PT5M", startWindow="PT2M")
    back = plan(schedule, T0, 1, at(23), job_running=False)
    assert not back.create_job and back.next_index == 5 and back.due_at == at(25)
    open_window = plan(schedule, T0, 1, at(21), job_running=False)
    assert open_window.create_job and open_window.next_index == 5


def test_no_occurrence_after_do_not_run_after() -> None:
    schedule = body(recurrenceInterval="PT5M", doNotRunAfter=clock.to_wire(at(12)))
    last = plan(schedule, T0, 2, at(10), job_running=False)
    assert last.create_job and last.exhausted and last.next_run is None
    assert plan(schedule, T0, 3, at(16), job_running=False).exhausted


def test_schedule_actions_refused_by_state_with_the_documented_codes() -> None:
    check_action("disable", ScheduleState.DISABLED)
    for state, code in ((ScheduleState.COMPLETED, "JobScheduleCompleted"),
                        (ScheduleState.TERMINATING, "JobScheduleBeingTerminated"),
                        (ScheduleState.DELETING, "JobScheduleBeingDeleted")):
        with pytest.raises(BatchError) as info:
            check_action("enable", state)
        assert info.value.code == code and info.value.status == 409
    check_action("delete", ScheduleState.COMPLETED)


def test_job_ids_are_the_schedule_id_and_a_number() -> None:
    assert job_id("nightly", 3) == "nightly:job-3"


@pytest.mark.parametrize("schedule, prop", [
    ({"recurrenceInterval": "PT30S"}, "schedule/recurrenceInterval"),
    ({"startWindow": "PT59S"}, "schedule/startWindow"),
    ({"doNotRunUntil": "2026-01-02T00:00:00Z", "doNotRunAfter": "2026-01-01T00:00:00Z"}, "schedule/doNotRunAfter"),
])
def test_invalid_schedules_are_refused_naming_the_property(schedule: dict, prop: str) -> None:
    param = decode({"id": "s", "schedule": schedule, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
                   JobScheduleAddParameter)
    with pytest.raises(BatchError) as info:
        validate_new_schedule(param)
    assert info.value.status == 400 and dict(info.value.values)["PropertyName"] == prop


def test_the_job_specification_is_checked_as_job_add_would_naming_its_properties() -> None:
    param = decode({"id": "s", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}, "priority": 5000}},
                   JobScheduleAddParameter)
    with pytest.raises(BatchError) as info:
        validate_new_schedule(param)
    assert dict(info.value.values)["PropertyName"] == "jobSpecification/priority"
    lifetime = decode({"id": "s", "schedule": {}, "jobSpecification": {"poolInfo": {"autoPoolSpecification": {
        "poolLifetimeOption": "jobschedule", "pool": {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": {
            "imageReference": {"publisher": "p", "offer": "o", "sku": "s"}, "nodeAgentSKUId": "n"}}}}}},
        JobScheduleAddParameter)
    validate_new_schedule(lifetime)   # a pool living as long as the schedule is allowed here
