"""Job schedules across a server restart and a clock that jumps: each occurrence starts at most one
job, missed windows stay missed, and the decision is the same whichever server (or Services
instance, as after a restart) makes it. Both stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from openbatch.domain.models import JobScheduleAddParameter, JobScheduleUpdateParameter, JobTerminateParameter, decode
from openbatch.services import Services
from openbatch.store.engine import Store
from openbatch.services.context import ListQuery

ACCOUNT = "acct"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


def server(store: Store, clock: Clock) -> Services:
    services = Services.create(store)
    services.ctx.now = clock
    return services


def jobs_of(services: Services, schedule_id: str) -> list[str]:
    return sorted(r.body["id"] for r in services.job_schedules.jobs_of(ACCOUNT, schedule_id, ListQuery()).records)


def end(services: Services, job_id: str) -> None:
    services.jobs.terminate(ACCOUNT, job_id, JobTerminateParameter(terminateReason="done"))


def test_missed_windows_are_lost_and_never_doubled_across_restarts(any_store: Store) -> None:
    clock = Clock()
    first = server(any_store, clock)
    first.job_schedules.add(ACCOUNT, decode({
        "id": "s", "schedule": {"recurrenceInterval": "PT5M", "startWindow": "PT2M"},
        "jobSpecification": {"poolInfo": {"poolId": "p"}}}, JobScheduleAddParameter))
    assert jobs_of(first, "s") == ["s:job-1"]
    end(first, "s:job-1")
    # the server stops for 23 minutes; occurrences 1-4 pass unseen
    clock.at(23)
    second = server(any_store, clock)
    assert second.job_schedules.run_due() == T0 + timedelta(minutes=25)
    assert jobs_of(second, "s") == ["s:job-1"]       # occurrence 4's window (20-22) closed: lost
    clock.at(25.5)
    for services in (first, second, second):          # two servers (or one twice) look at the same time
        services.job_schedules.run_due()
    assert jobs_of(second, "s") == ["s:job-1", "s:job-2"]
    record = second.job_schedules.get(ACCOUNT, "s")
    assert record.body["executionInfo"]["nextRunTime"] == "2026-03-01T08:30:00.000000Z"
    assert record.body["executionInfo"]["recentJob"] == {"id": "s:job-2"}


def test_an_occurrence_waits_for_the_running_job_within_its_window(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    services.job_schedules.add(ACCOUNT, decode({
        "id": "w", "schedule": {"recurrenceInterval": "PT5M", "startWindow": "PT2M"},
        "jobSpecification": {"poolInfo": {"poolId": "p"}}}, JobScheduleAddParameter))
    clock.at(5.5)
    assert services.job_schedules.run_due() == T0 + timedelta(minutes=7)   # waits for job-1 until 7
    assert jobs_of(services, "w") == ["w:job-1"]
    clock.at(6)
    end(services, "w:job-1")                          # the job ends in the window: the next starts at once
    assert jobs_of(services, "w") == ["w:job-1", "w:job-2"]
    clock.at(10.5)
    services.job_schedules.run_due()
    clock.at(12.5)                                    # job-2 ran through occurrence 2's window: it is lost
    services.job_schedules.run_due()
    end(services, "w:job-2")
    assert jobs_of(services, "w") == ["w:job-1", "w:job-2"]
    clock.at(15)
    services.job_schedules.run_due()
    assert jobs_of(services, "w") == ["w:job-1", "w:job-2", "w:job-3"]


def test_do_not_run_after_completes_the_schedule_once_its_last_job_ends(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    services.job_schedules.add(ACCOUNT, decode({
        "id": "a", "schedule": {"recurrenceInterval": "PT5M", "doNotRunAfter": "2026-03-01T08:07:00Z"},
        "jobSpecification": {"poolInfo": {"poolId": "p"}}}, JobScheduleAddParameter))
    end(services, "a:job-1")
    clock.at(5)
    services.job_schedules.run_due()
    assert services.job_schedules.get(ACCOUNT, "a").body["state"] == "active"
    assert "nextRunTime" not in services.job_schedules.get(ACCOUNT, "a").body["executionInfo"]
    clock.at(6)
    end(services, "a:job-2")
    record = services.job_schedules.get(ACCOUNT, "a")
    assert record.body["state"] == "completed"
    assert record.body["executionInfo"]["endTime"] == "2026-03-01T08:06:00.000000Z"


def test_a_job_that_completes_as_it_is_added_moves_the_schedule_on_once(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    spec = {"poolInfo": {"poolId": "p"}, "onAllTasksComplete": "terminatejob"}   # no tasks: done at once
    services.job_schedules.add(ACCOUNT, decode({"id": "r", "schedule": {"recurrenceInterval": "PT5M"},
                                                "jobSpecification": spec}, JobScheduleAddParameter))
    assert jobs_of(services, "r") == ["r:job-1"]
    record = services.job_schedules.get(ACCOUNT, "r")
    assert record.body["state"] == "active" and record.row["next_index"] == 1
    services.job_schedules.add(ACCOUNT, decode({"id": "once", "schedule": {}, "jobSpecification": spec},
                                               JobScheduleAddParameter))
    assert services.job_schedules.get(ACCOUNT, "once").body["state"] == "completed"


def test_the_same_schedule_sent_again_starts_no_second_job(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    body = {"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": {"poolInfo": {"poolId": "p"}}}
    services.job_schedules.add(ACCOUNT, decode({"id": "h", **body}, JobScheduleAddParameter))
    end(services, "h:job-1")
    clock.at(20)
    services.job_schedules.update(ACCOUNT, "h", decode({**body, "metadata": [{"name": "a", "value": "b"}]},
                                                        JobScheduleUpdateParameter))
    assert jobs_of(services, "h") == ["h:job-1"]
    assert services.job_schedules.get(ACCOUNT, "h").body["executionInfo"]["nextRunTime"].startswith("2026-03-01T09:00")


def test_no_job_starts_after_do_not_run_after_even_for_an_earlier_occurrence(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    services.job_schedules.add(ACCOUNT, decode({
        "id": "late", "schedule": {"recurrenceInterval": "PT5M", "doNotRunAfter": "2026-03-01T08:06:00Z"},
        "jobSpecification": {"poolInfo": {"poolId": "p"}}}, JobScheduleAddParameter))
    clock.at(5.5)
    services.job_schedules.run_due()       # occurrence 1 (08:05) waits for job-1
    clock.at(7)
    end(services, "late:job-1")             # past doNotRunAfter: no job-2, the schedule completes
    assert jobs_of(services, "late") == ["late:job-1"]
    assert services.job_schedules.get(ACCOUNT, "late").body["state"] == "completed"


def test_an_infinite_start_window_or_interval_is_never_an_error(any_store: Store) -> None:
    clock = Clock()
    services = server(any_store, clock)
    forever = "P10675199DT2H48M5.4775807S"   # .NET TimeSpan.MaxValue, what clients send for "infinite"
    services.job_schedules.add(ACCOUNT, decode({
        "id": "inf", "schedule": {"recurrenceInterval": forever, "startWindow": forever},
        "jobSpecification": {"poolInfo": {"poolId": "p"}}}, JobScheduleAddParameter))
    assert jobs_of(services, "inf") == ["inf:job-1"]
    end(services, "inf:job-1")
    assert services.job_schedules.get(ACCOUNT, "inf").body["state"] == "completed"
