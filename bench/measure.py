"""Small measuring helpers: percentiles, deadlines, repeated timings."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Deadline:
    """A time budget: ``left()`` seconds remain; ``passed()`` once it is spent."""

    seconds: float
    start: float = 0.0

    def __post_init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def passed(self) -> bool:
        return self.elapsed() >= self.seconds


def ms(seconds: float) -> float:
    return seconds * 1000.0


def time_calls(call: Callable[[], object], times: int, budget: float) -> list[float]:
    """Run ``call`` up to ``times`` times (at least once) within ``budget`` seconds; durations in ms."""
    deadline = Deadline(budget)
    samples: list[float] = []
    for _ in range(max(1, times)):
        start = time.perf_counter()
        call()
        samples.append(ms(time.perf_counter() - start))
        if deadline.passed():
            break
    return samples


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass; returns whether it became true."""
    deadline = Deadline(timeout)
    while not deadline.passed():
        if check():
            return True
        time.sleep(interval)
    return check()
