"""The collector settled after startup: what exists is frozen, the youngest generation collected less often."""

from __future__ import annotations

import gc

from openbatch import gc_tuning


def test_settle_freezes_what_exists_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    kept = object.__new__(type("Kept", (), {}))
    try:
        gc_tuning.settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == gc_tuning.YOUNG_THRESHOLD
        assert not any(obj is kept for obj in gc.get_objects())   # frozen: out of the collector's sight
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
