"""The names the language defines: service variables, constants, functions and sample methods."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    """How a service-defined variable may be used."""

    TARGET = "target"  # read-write node target (a double)
    DEALLOCATION = "deallocation"  # read-write $NodeDeallocationOption
    METRIC = "metric"  # read-only sample set: only its methods may be used
    COUNT = "count"  # read-only current value that also keeps samples (node counts)


DEDICATED = "$TargetDedicatedNodes"
LOW_PRIORITY = "$TargetLowPriorityNodes"
DEALLOCATION = "$NodeDeallocationOption"

#: Resource and task metrics (docs, "Read-only service-defined variables" and "Metrics").
METRICS = (
    "$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes", "$DiskWriteBytes",
    "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
    "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks",
)
#: Node counts and pool settings: a current value (``Inputs.scalars``) and, when recorded, samples.
COUNTS = (
    "$SampleNodeCount", "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$PreemptedNodeCount",
    "$UsableNodeCount", "$TaskSlotsPerNode",
)

#: Canonical name -> kind; lookups go through :func:`system_name` (case-insensitive).
SYSTEM: dict[str, Kind] = {
    DEDICATED: Kind.TARGET, LOW_PRIORITY: Kind.TARGET, DEALLOCATION: Kind.DEALLOCATION,
    **{name: Kind.METRIC for name in METRICS}, **{name: Kind.COUNT for name in COUNTS},
}
#: Documented aliases ("$TargetDedicated", "$TargetLowPriority") and the old read aliases.
ALIASES = {
    "$TargetDedicated": DEDICATED, "$TargetLowPriority": LOW_PRIORITY,
    "$CurrentDedicated": "$CurrentDedicatedNodes", "$CurrentLowPriority": "$CurrentLowPriorityNodes",
}
_FOLDED = {name.lower(): name for name in [*SYSTEM, *ALIASES]}


def system_name(name: str) -> str | None:
    """The canonical spelling of a service-defined variable or alias, or None for a user variable."""
    return _FOLDED.get(name.lower()) if name.startswith("$") else None


def canonical(name: str) -> str:
    """A system name or alias resolved to the variable it designates."""
    return ALIASES.get(name, name)


#: TimeInterval constants in 100 ns ticks (TimeInterval_Year is 365 days).
TICKS_PER_SECOND = 10_000_000
INTERVALS = {
    "TimeInterval_Zero": 0,
    "TimeInterval_100ns": 1,
    "TimeInterval_Microsecond": 10,
    "TimeInterval_Millisecond": 10_000,
    "TimeInterval_Second": TICKS_PER_SECOND,
    "TimeInterval_Minute": 60 * TICKS_PER_SECOND,
    "TimeInterval_Hour": 3600 * TICKS_PER_SECOND,
    "TimeInterval_Day": 86400 * TICKS_PER_SECOND,
    "TimeInterval_Week": 7 * 86400 * TICKS_PER_SECOND,
    "TimeInterval_Year": 365 * 86400 * TICKS_PER_SECOND,
}

#: The values of $NodeDeallocationOption, written as bare words.
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

#: Function name -> (min args, max args or None for a doubleVecList).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "avg": (0, None), "len": (0, None), "max": (0, None), "min": (0, None), "norm": (0, None),
    "range": (0, None), "std": (0, None), "sum": (0, None),
    "lg": (1, None), "ln": (1, None), "log": (1, None),
    "ceil": (1, None), "floor": (1, None), "round": (1, None),
    "percentile": (2, 2), "val": (2, 2), "rand": (0, 0), "stop": (0, 0), "time": (0, 1),
}

#: Sample method name -> (min args, max args).
METHODS: dict[str, tuple[int, int]] = {
    "GetSample": (1, 3), "GetSamplePercent": (1, 2), "GetSamplePeriod": (0, 0),
    "Count": (0, 0), "HistoryBeginTime": (0, 0),
}

#: The members of a timestamp (docs, "Types").
TIMESTAMP_FIELDS = ("year", "month", "day", "weekday", "hour", "minute", "second")
