"""Task counts as deltas: every task transition moves one task (and its slots) between buckets.

The job row keeps ten counters (task and slot counts for active, running,
completed, succeeded, failed); they change in the same transaction as the task,
so a read is exact and O(1). ``preparing`` counts as running; ``succeeded`` and
``failed`` split ``completed`` by ``executionInfo.result``.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

COUNTER_NAMES = ("active", "running", "completed", "succeeded", "failed")


def buckets(state: str | None, result: str | None) -> tuple[str, ...]:
    """The counters a task in ``state`` with ``result`` contributes to."""
    if state is None:
        return ()
    if state == "active":
        return ("active",)
    if state in ("preparing", "running"):
        return ("running",)
    if result == "success":
        return ("completed", "succeeded")
    if result == "failure":
        return ("completed", "failed")
    return ("completed",)


@lru_cache(maxsize=1024)
def delta(
    old_state: str | None, old_result: str | None, new_state: str | None, new_result: str | None, slots: int
) -> Mapping[str, int]:
    """Counter changes for one task moving from (old_state, old_result) to (new_state, new_result).

    Keys are ``task_<bucket>`` and ``slot_<bucket>``; ``None`` as a state means the
    task does not exist (before add, after delete). The answer is read-only (and
    shared: a transition of a batch costs a dictionary lookup).
    """
    change: Counter[str] = Counter()
    for bucket in buckets(old_state, old_result):
        change[f"task_{bucket}"] -= 1
        change[f"slot_{bucket}"] -= slots
    for bucket in buckets(new_state, new_result):
        change[f"task_{bucket}"] += 1
        change[f"slot_{bucket}"] += slots
    return MappingProxyType({k: v for k, v in change.items() if v})


def to_wire(row: dict[str, int]) -> dict:
    """TaskCountsResult from the counter columns."""
    return {
        "taskCounts": {name: int(row[f"task_{name}"]) for name in COUNTER_NAMES},
        "taskSlotCounts": {name: int(row[f"slot_{name}"]) for name in COUNTER_NAMES},
    }
