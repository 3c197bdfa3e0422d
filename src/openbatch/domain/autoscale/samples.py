"""Sample data of the service-defined metrics and their methods (docs, "Obtain sample data").

The server records one :class:`Sample` per metric every ``sample_interval`` (30 s
in Azure). A time frame is given by timeintervals looked back from now or by
timestamps; it holds the samples with ``start < time <= end``. The sample
percentage compares the samples available in the frame with the number the
interval allows (frame / sample interval): ``$CPUPercent.GetSample(TimeInterval_Minute * 10)``
expects 20 samples at 30 s, and with 18 available, ``GetSample(..., 95)`` fails
(90 %) with ``InsufficientSampleData`` while ``GetSample(..., 80)`` succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import INSUFFICIENT_SAMPLE_DATA, Fault
from .names import TICKS_PER_SECOND
from .values import Interval, Timestamp, Value, Vec, format_double, require_double, type_name, utc


@dataclass(frozen=True)
class Sample:
    """One recorded value of a metric, aggregated over the pool (e.g. average CPU, summed task counts)."""

    time: datetime
    value: float


@dataclass(frozen=True)
class SampleSet:
    """The samples of one metric as a formula sees them at ``now`` (oldest first)."""

    name: str
    samples: tuple[Sample, ...]
    now: datetime
    interval: timedelta
    history_begin: datetime

    @classmethod
    def of(cls, name: str, samples: Sequence[Sample], now: datetime, interval: timedelta,
           history_begin: datetime) -> SampleSet:
        now = utc(now)
        kept = sorted((Sample(utc(s.time), float(s.value)) for s in samples if utc(s.time) <= now),
                      key=lambda s: s.time)
        return cls(name, tuple(kept), now, interval, utc(history_begin))

    # -- the documented methods ----------------------------------------------------------
    def get_sample(self, args: list[Value]) -> Vec:
        """GetSample(count) | GetSample(start [, percent]) | GetSample(start, end [, percent])."""
        if len(args) == 1 and isinstance(args[0], float):
            count = args[0]
            if not count >= 1:
                raise Fault(f"GetSample() needs a count of at least 1, not {format_double(count)}")
            n = int(min(count, len(self.samples) or 1))
            return Vec(tuple(s.value for s in self.samples[len(self.samples) - n:]))
        bounds, percent = self._split(args)
        chosen, available = self._frame(bounds)
        if percent is not None and available < percent:
            raise Fault(f"Insufficient data from data set: {self.name} wanted {format_double(percent)}%, "
                        f"received {format_double(available)}%", INSUFFICIENT_SAMPLE_DATA)
        return Vec(tuple(s.value for s in chosen))

    def get_sample_percent(self, args: list[Value]) -> float:
        """GetSamplePercent(start [, end]): the percentage of samples available in the frame."""
        if not all(isinstance(a, (Interval, Timestamp)) for a in args):
            raise Fault("GetSamplePercent() takes a timestamp or timeinterval start and an optional end")
        return self._frame(args)[1]

    def get_sample_period(self) -> Interval:
        """GetSamplePeriod(): the period at which samples are taken."""
        return Interval(round(self.interval.total_seconds() * TICKS_PER_SECOND))

    def count(self) -> float:
        """Count(): the number of samples in the metric's history."""
        return float(len(self.samples))

    def history_begin_time(self) -> Timestamp:
        """HistoryBeginTime(): the time of the oldest available sample (else when history began)."""
        return Timestamp(self.samples[0].time if self.samples else self.history_begin)

    # -- helpers ---------------------------------------------------------------------------
    def _split(self, args: list[Value]) -> tuple[list[Value], float | None]:
        times = [a for a in args if isinstance(a, (Interval, Timestamp))]
        if args[:len(times)] != times or not 1 <= len(times) <= 2 or len(args) - len(times) > 1:
            kinds = ", ".join(type_name(a) for a in args)
            raise Fault(f"GetSample() takes a count, or a start [and end] timestamp or timeinterval "
                        f"and an optional sample percentage, not ({kinds})")
        if len(args) == len(times):
            return times, None
        percent = require_double(args[-1], "the sample percentage")
        if not 0.0 <= percent <= 100.0:
            raise Fault(f"the sample percentage must be between 0 and 100, not {format_double(percent)}")
        return times, percent

    def _moment(self, bound: Value) -> datetime:
        if isinstance(bound, Timestamp):
            return bound.at
        assert isinstance(bound, Interval)
        return self.now - bound.delta()

    def _frame(self, bounds: list[Value]) -> tuple[list[Sample], float]:
        """The samples in the frame and the percentage of the expected number they make."""
        ends = [self._moment(b) for b in bounds] + ([self.now] if len(bounds) == 1 else [])
        start, end = min(ends), max(ends)
        chosen = [s for s in self.samples if start < s.time <= end]
        expected = (end - start) / self.interval if self.interval > timedelta(0) else 0.0
        percent = 100.0 if expected <= 0 else min(100.0, 100.0 * len(chosen) / expected)
        return chosen, percent


def apply(samples: SampleSet, method: str, args: list[Value]) -> Value:
    """Call sample method ``method`` (names and argument counts are checked by the parser)."""
    if method == "GetSample":
        return samples.get_sample(args)
    if method == "GetSamplePercent":
        return samples.get_sample_percent(args)
    if method == "GetSamplePeriod":
        return samples.get_sample_period()
    if method == "Count":
        return samples.count()
    if method == "HistoryBeginTime":
        return samples.history_begin_time()
    raise Fault(f"unknown sample method '{method}'")  # unreachable: the parser checks names
