"""Aggregation intervals of pool usage metrics (domain/usage_metrics.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.usage_metrics import core_seconds, interval_start, window


def t(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 2, 1, hour, minute, second, tzinfo=timezone.utc)


def test_intervals_are_the_half_hours() -> None:
    assert interval_start(t(10, 47, 12)) == t(10, 30)
    assert interval_start(t(10, 0)) == t(10, 0)


def test_by_default_the_last_interval_that_has_ended() -> None:
    assert window(t(10, 47), None, None) == (t(10, 0), t(10, 30))


def test_the_intervals_within_start_and_end_that_have_ended() -> None:
    assert window(t(12, 5), t(9, 10), t(11, 40)) == (t(9, 30), t(11, 30))  # 9:30, 10:00, 10:30, 11:00
    assert window(t(10, 5), t(9, 0), None) == (t(9, 0), t(10, 0))         # until now: 9:00, 9:30
    assert window(t(10, 5), t(9, 10), t(9, 50)) == (t(9, 30), t(9, 30))    # none lies within
    with pytest.raises(BatchError):
        window(t(10, 5), t(9, 10), t(9, 0))


def test_a_sample_counts_the_cores_of_the_nodes_that_hold_a_host() -> None:
    nodes = [(True, "idle", 2), (False, "running", 1), (False, "preempted", 3), (True, "deallocated", 1)]
    assert core_seconds("standard_d4s_v3", nodes, 30) == 3 * 4 * 30
