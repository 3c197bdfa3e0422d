"""What task state changes tell the operator: a debug line each, and the metrics, once committed.

The changes of one transaction are tallied on its connection and handed to openbatch.metrics by one
after-commit callback: a transaction that rolls back counts nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from .. import metrics
from ..domain import clock
from ..store.engine import Connection, after_commit, transaction_local

log = logging.getLogger("openbatch.tasks")

Json = dict[str, Any]
_TALLY = "openbatch.task_events"
_STARTED = frozenset({"preparing", "running"})


class _Tally:
    __slots__ = ("transitions", "waits", "runtimes")

    def __init__(self) -> None:
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.waits: list[float] = []
        self.runtimes: list[float] = []

    def publish(self) -> None:
        metrics.tasks_changed(self.transitions, self.waits, self.runtimes)


def _tally(conn: Connection) -> _Tally:
    return transaction_local(conn, _TALLY, lambda: _published_after_commit(conn))


def _published_after_commit(conn: Connection) -> _Tally:
    tally = _Tally()
    after_commit(conn, tally.publish)
    return tally


def changed(conn: Connection, old: Json | None, new: Json | None, now: datetime) -> None:
    """One task moved from ``old`` to ``new`` (None: it did not exist, or no longer does)."""
    old_state = old["state"] if old is not None else "none"
    new_state = new["state"] if new is not None else "none"
    if old_state == new_state:
        return
    tally = _tally(conn)
    tally.transitions[(old_state, new_state)] += 1
    if old_state == "active" and new_state in _STARTED and old is not None:
        tally.waits.append(max(0.0, (now - clock.from_wire(old["stateTransitionTime"])).total_seconds()))
    elif old_state in _STARTED and new_state == "completed" and new is not None:
        info = new.get("executionInfo") or {}
        if info.get("startTime") and info.get("endTime"):
            seconds = (clock.from_wire(info["endTime"]) - clock.from_wire(info["startTime"])).total_seconds()
            tally.runtimes.append(max(0.0, seconds))
    if log.isEnabledFor(logging.DEBUG):
        task = new or old
        assert task is not None
        log.debug("task %s: %s -> %s", task["id"], old_state, new_state,
                  extra={"task": task["id"], "from_state": old_state, "to_state": new_state})


def added(conn: Connection, number: int) -> None:
    """``number`` tasks were added (active)."""
    if number:
        _tally(conn).transitions[("none", "active")] += number
