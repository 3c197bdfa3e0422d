"""Pool usage metrics (Pool_ListUsageMetrics): core-hours per pool per aggregation interval.

Azure aggregates a pool's usage in 30-minute intervals and lists an interval a couple of hours after
it ends. openbatch counts it from the samples it records of every pool (``sample_period`` apart:
each sample adds its nodes' cores times the period) and lists an interval as soon as it has ended.
Nodes count while they hold a host: not deallocated, not preempted. Without ``starttime`` and
``endtime`` the list is the last interval that has ended; with them, every interval that lies
within [starttime, endtime].
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from . import clock
from .errors import invalid_query
from .quotas import cores_of

Json = dict[str, Any]

INTERVAL = timedelta(minutes=30)
#: Node states that hold no host, so use no cores.
IDLE_STATES = frozenset({"deallocated", "preempted"})


def interval_start(time: datetime) -> datetime:
    """The start of the aggregation interval ``time`` falls in (UTC, on the half hour)."""
    time = clock.aware_utc(time)
    return time.replace(minute=time.minute - time.minute % 30, second=0, microsecond=0)


def core_seconds(vm_size: str, nodes: Sequence[tuple[bool, str, int]], seconds: float) -> float:
    """What a sample of ``seconds`` adds: the pool's nodes holding a host, times their cores."""
    return sum(count for _, state, count in nodes if state not in IDLE_STATES) * cores_of(vm_size) * seconds


def entry_body(pool_id: str, vm_size: str, start: datetime) -> Json:
    """The stored part of a PoolUsageMetrics entry (totalCoreHours comes from the counted seconds)."""
    return {"poolId": pool_id, "startTime": clock.to_wire(start), "endTime": clock.to_wire(start + INTERVAL),
            "vmSize": vm_size}


def entry(body: Json, core_seconds_used: float) -> Json:
    """The PoolUsageMetrics entry: the stored part and the core-hours its seconds make."""
    return {**body, "totalCoreHours": round(core_seconds_used / 3600.0, 6)}


def window(now: datetime, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The starts of the intervals to list, as [first, stop): the intervals that lie within [start, end]
    and have ended. Without ``start``: from the last interval that has ended; without ``end``: until now."""
    ended = interval_start(now)   # the intervals starting before this one have ended
    if start is not None and end is not None and clock.aware_utc(end) < clock.aware_utc(start):
        raise invalid_query("endtime", clock.to_wire(clock.aware_utc(end)), "endtime must not be earlier than starttime.")
    if start is None:
        first = ended - INTERVAL
    else:
        first = interval_start(start)
        if first < clock.aware_utc(start):
            first += INTERVAL   # an interval begun before starttime is not within it
    stop = ended if end is None else min(ended, interval_start(clock.aware_utc(end) - INTERVAL) + INTERVAL)
    return first, max(first, stop)
