"""Task-count deltas: every transition moves exactly one task (and its slots) between buckets."""

import itertools

import pytest

from openbatch.domain.counts import buckets, delta

STATES = [None, "active", "preparing", "running", "completed"]
RESULTS = [None, "success", "failure"]


def test_buckets() -> None:
    assert buckets("preparing", None) == ("running",)
    assert buckets("completed", "success") == ("completed", "succeeded")
    assert buckets("completed", "failure") == ("completed", "failed")
    assert buckets(None, None) == ()


@pytest.mark.parametrize(("old", "new"), list(itertools.product(STATES, STATES)))
def test_delta_conserves_tasks(old: str | None, new: str | None) -> None:
    for old_result, new_result in itertools.product(RESULTS, RESULTS):
        change = delta(old, old_result if old == "completed" else None, new, new_result if new == "completed" else None, 3)
        total = sum(v for k, v in change.items() if k in ("task_active", "task_running", "task_completed"))
        assert total == (new is not None) - (old is not None)
        slot_total = sum(v for k, v in change.items() if k in ("slot_active", "slot_running", "slot_completed"))
        assert slot_total == 3 * total
        assert all(v != 0 for v in change.values())
