"""Job schedule rules: validation, the stored CloudJobSchedule body, its states, and when its jobs are due.

A schedule's occurrences are ``origin + k * recurrenceInterval`` (k = 0, 1, ...; only k = 0 when
it does not recur), where ``origin`` is ``doNotRunUntil`` or, without one, the time the schedule
was set (added, or its ``schedule`` changed). Occurrence k may start a job from its time until
its ``startWindow`` closes (no startWindow: until the next occurrence; a window longer than the
recurrence is the same, a due job is never carried into the next interval). At most one job
runs at a time: an occurrence that comes while the previous job still runs waits for it within
its window, and is lost if the window closes first. No occurrence later than ``doNotRunAfter``
runs. When no occurrence is left, the schedule completes once its last job has. Everything is a
pure function of the stored schedule, its next occurrence index and the clock, so a server that
restarts (or another that takes over) decides the same: a missed window stays missed, and an
occurrence is consumed in the transaction that creates its job, never twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from . import auto_pools, clock
from .errors import BatchError, invalid_property
from .jobs import validate_new_job
from .models import (
    JobAddParameter,
    JobScheduleAddParameter,
    JobSchedulePatchParameter,
    JobScheduleUpdateParameter,
    JobSpecification,
    Schedule,
    decode,
    to_json,
)
from .states import with_state
from .validation import check_display_name, check_id, check_metadata, parse_duration

Json = dict[str, Any]

#: Azure's minimum recurrenceInterval and startWindow (a server setting may lower it: ServiceContext).
MIN_INTERVAL = timedelta(minutes=1)


class ScheduleState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    TERMINATING = "terminating"
    COMPLETED = "completed"
    DELETING = "deleting"


_STATE_ERROR: dict[ScheduleState, tuple[str, str]] = {
    ScheduleState.TERMINATING: ("JobScheduleBeingTerminated", "The specified job schedule is being terminated."),
    ScheduleState.COMPLETED: ("JobScheduleCompleted", "The specified job schedule is already in a completed state."),
    ScheduleState.DELETING: ("JobScheduleBeingDeleted",
                             "The specified job schedule has been marked for deletion and is being deleted."),
    ScheduleState.DISABLED: ("JobScheduleDisabled", "The specified job schedule is disabled."),
    ScheduleState.ACTIVE: ("OperationInvalidForCurrentState", "The job schedule is active."),
}

#: The states each action may start from (enable and disable of a schedule already so change nothing).
ACTION_FROM: dict[str, frozenset[ScheduleState]] = {
    "update": frozenset({ScheduleState.ACTIVE, ScheduleState.DISABLED}),
    "disable": frozenset({ScheduleState.ACTIVE, ScheduleState.DISABLED}),
    "enable": frozenset({ScheduleState.ACTIVE, ScheduleState.DISABLED}),
    "terminate": frozenset({ScheduleState.ACTIVE, ScheduleState.DISABLED}),
    "delete": frozenset(set(ScheduleState) - {ScheduleState.DELETING}),
}


def check_action(action: str, state: ScheduleState) -> None:
    """The documented 409 when ``action`` is not allowed in ``state``."""
    if state not in ACTION_FROM[action]:
        code, message = _STATE_ERROR[state]
        raise BatchError(code, message, [("JobScheduleState", state.value)])


def job_id(schedule_id: str, number: int) -> str:
    """The id of a schedule's ``number``-th job, as Azure names them."""
    return f"{schedule_id}:job-{number}"


# -- validation and bodies --------------------------------------------------------------------


def _check_schedule(schedule: Schedule, minimum: timedelta) -> None:
    for name in ("startWindow", "recurrenceInterval"):
        value = getattr(schedule, name)
        if value is not None and parse_duration(value, f"schedule/{name}") < minimum:
            raise invalid_property(f"schedule/{name}", value, f"The minimum value is {_span(minimum)}.")
    until, after = schedule.doNotRunUntil, schedule.doNotRunAfter
    if until is not None and after is not None and clock.aware_utc(after) < clock.aware_utc(until):
        raise invalid_property("schedule/doNotRunAfter", clock.to_wire(clock.aware_utc(after)),
                               "doNotRunAfter must not be earlier than doNotRunUntil.")


def _span(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds / 60:g} minute(s)" if seconds >= 60 else f"{seconds:g} second(s)"


def check_job_specification(schedule_id: str, spec: JobSpecification) -> None:
    """Job Add's own checks, with errors naming the property under ``jobSpecification``."""
    try:
        validate_new_job(decode({**to_json(spec), "id": schedule_id}, JobAddParameter), in_schedule=True)
    except BatchError as error:
        raise auto_pools.prefixed(error, "jobSpecification") from None


def validate_new_schedule(param: JobScheduleAddParameter, minimum: timedelta = MIN_INTERVAL) -> None:
    check_id(param.id)
    check_display_name(param.displayName)
    _check_schedule(param.schedule, minimum)
    check_job_specification(param.id, param.jobSpecification)
    check_metadata(param.metadata)


def _schedule_json(schedule: Schedule) -> Json:
    body = to_json(schedule)
    for name in ("doNotRunUntil", "doNotRunAfter"):
        value = getattr(schedule, name)
        if value is not None:
            body[name] = clock.to_wire(clock.aware_utc(value))
    return body


def new_schedule_body(param: JobScheduleAddParameter, now: datetime) -> Json:
    stamp = clock.to_wire(now)
    body: Json = {"id": param.id}
    if param.displayName is not None:
        body["displayName"] = param.displayName
    body.update(creationTime=stamp, state=ScheduleState.ACTIVE.value, stateTransitionTime=stamp,
                schedule=_schedule_json(param.schedule), jobSpecification=to_json(param.jobSpecification),
                executionInfo={}, metadata=to_json(param).get("metadata", []))
    return body


def changed_body(body: Json, change: JobSchedulePatchParameter | JobScheduleUpdateParameter, *, replace: bool,
                 minimum: timedelta = MIN_INTERVAL) -> tuple[Json, bool]:
    """The body after Patch (``replace`` False: only what is given) or Update (every updatable
    property; metadata omitted is emptied), and whether its ``schedule`` changed (its occurrences
    start again from the new one; the same schedule sent again changes nothing)."""
    if change.schedule is not None:
        _check_schedule(change.schedule, minimum)
    if change.jobSpecification is not None:
        check_job_specification(body["id"], change.jobSpecification)
    check_metadata(change.metadata)
    new = dict(body)
    rescheduled = False
    if change.schedule is not None:
        new["schedule"] = _schedule_json(change.schedule)
        rescheduled = new["schedule"] != body["schedule"]
    if change.jobSpecification is not None:
        new["jobSpecification"] = to_json(change.jobSpecification)
    if change.metadata is not None or replace:
        new["metadata"] = to_json(change).get("metadata", [])
    return new, rescheduled


def with_schedule_state(body: Json, state: ScheduleState, now: datetime) -> Json:
    return with_state(body, state, now)


def completed(body: Json, now: datetime) -> Json:
    new = with_state(body, ScheduleState.COMPLETED, now)
    info = {k: v for k, v in new.get("executionInfo", {}).items() if k != "nextRunTime"}
    info["endTime"] = clock.to_wire(now)
    new["executionInfo"] = info
    return new


def with_next_run(body: Json, next_run: datetime | None) -> Json:
    info = {k: v for k, v in body.get("executionInfo", {}).items() if k != "nextRunTime"}
    if next_run is not None:
        info = {"nextRunTime": clock.to_wire(next_run), **info}
    return body if info == body.get("executionInfo") else {**body, "executionInfo": info}


def with_recent_job(body: Json, job: str) -> Json:
    return {**body, "executionInfo": {**body.get("executionInfo", {}), "recentJob": {"id": job}}}


def auto_pool_of(body: Json) -> Json | None:
    """The auto pool specification of the schedule's jobs (None: they name a pool)."""
    return body["jobSpecification"].get("poolInfo", {}).get("autoPoolSpecification")


def job_parameter(body: Json, job: str) -> JobAddParameter:
    """The Job Add request a schedule's job comes from (its specification was checked when set)."""
    return decode({**body["jobSpecification"], "id": job}, JobAddParameter)


# -- when jobs are due -------------------------------------------------------------------------


def origin(body: Json, set_at: datetime) -> datetime:
    """Where occurrences count from: doNotRunUntil, or when the schedule was set."""
    until = body["schedule"].get("doNotRunUntil")
    return clock.from_wire(until) if until else set_at


@dataclass(frozen=True, slots=True)
class Plan:
    """What a schedule does now (see the module docstring)."""

    #: Start a job for occurrence ``next_index - 1`` now.
    create_job: bool
    #: The first occurrence not yet consumed or lost.
    next_index: int
    #: executionInfo.nextRunTime (None: no occurrence is left).
    next_run: datetime | None
    #: When to look again by the clock (None: only when its job ends, or never).
    due_at: datetime | None
    #: No occurrence is left: the schedule completes once no job of it runs.
    exhausted: bool


def _later(time: datetime | None, span: timedelta) -> datetime | None:
    """``time + span``, or None (never) past the last datetime: .NET's TimeSpan.MaxValue means "infinite"."""
    try:
        return time + span if time is not None else None
    except OverflowError:
        return None


def plan(body: Json, start: datetime, next_index: int, now: datetime, job_running: bool) -> Plan:
    """The schedule's next step at ``now``; ``start``: its origin; ``job_running``: one of its jobs
    has not completed yet. No job starts after doNotRunAfter, whenever its occurrence was."""
    schedule = body["schedule"]
    interval = parse_duration(schedule["recurrenceInterval"], "") if schedule.get("recurrenceInterval") else None
    window = parse_duration(schedule["startWindow"], "") if schedule.get("startWindow") else None
    after = clock.from_wire(schedule["doNotRunAfter"]) if schedule.get("doNotRunAfter") else None

    def at(k: int) -> datetime | None:
        if not interval:
            return start if k == 0 else None
        try:
            return start + k * interval
        except OverflowError:
            return None

    def window_end(k: int) -> datetime | None:
        ends = [t for t in (_later(at(k), window) if window else None, at(k + 1) if interval else None, after)
                if t is not None]
        return min(ends) if ends else None

    def gone(time: datetime | None) -> bool:
        return time is None or (after is not None and time > after)

    k = next_index
    if interval and now > start:
        k = max(k, int((now - start) / interval))
    while True:
        begins = at(k)
        if gone(begins) or (after is not None and now > after):
            return Plan(False, k, None, None, True)
        assert begins is not None
        ends = window_end(k)
        if now < begins:
            return Plan(False, k, begins, begins, False)
        if ends is not None and now >= ends:
            k += 1   # its opportunity is lost
            continue
        if job_running:
            return Plan(False, k, begins, ends, False)
        following = at(k + 1)
        exhausted = gone(following)
        next_run = None if exhausted else following
        return Plan(True, k + 1, next_run, next_run, exhausted)
