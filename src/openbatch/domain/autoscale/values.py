"""The value types of the language and how ``autoScaleRun.results`` writes them.

double -> ``float``; doubleVec -> :class:`Vec`; string -> ``str``; timestamp ->
:class:`Timestamp`; timeinterval -> :class:`Interval` (100 ns ticks, like .NET's
TimeSpan). A doubleVecList is not a value: it is an argument list of doubles and
doubleVecs that functions flatten (:func:`flatten`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import Fault
from .names import TICKS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Vec:
    """A doubleVec."""

    items: tuple[float, ...]


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A timeinterval in 100 ns ticks."""

    ticks: int

    @property
    def seconds(self) -> float:
        return self.ticks / TICKS_PER_SECOND

    def delta(self) -> timedelta:
        return timedelta(microseconds=self.ticks // 10)


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A UTC timestamp; its members are the docs' ``year`` ... ``second``."""

    at: datetime

    def member(self, name: str) -> float:
        if name == "weekday":
            return float(self.at.isoweekday() % 7)  # 1 = Monday ... 6 = Saturday, 0 = Sunday
        return float(getattr(self.at, name))


Value = float | Vec | str | Timestamp | Interval

_TYPE_NAMES = {float: "double", Vec: "doubleVec", str: "string", Timestamp: "timestamp", Interval: "timeinterval"}


def type_name(value: Value) -> str:
    return _TYPE_NAMES[type(value)]


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def shift(moment: Timestamp, interval: Interval) -> Timestamp:
    """``moment + interval``; an error past the representable years."""
    try:
        return Timestamp(moment.at + interval.delta())
    except OverflowError:
        raise Fault("the timestamp is out of range") from None


def between(later: Timestamp, earlier: Timestamp) -> Interval:
    delta = later.at - earlier.at
    return Interval((delta.days * 86400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10)


def flatten(args: list[Value], what: str) -> list[float]:
    """A doubleVecList as one list of doubles (``what`` names the taker in errors, e.g. ``avg()``)."""
    out: list[float] = []
    for arg in args:
        if isinstance(arg, float):
            out.append(arg)
        elif isinstance(arg, Vec):
            out.extend(arg.items)
        else:
            raise Fault(f"{what} takes doubles and doubleVecs, not a {type_name(arg)}")
    return out


def require_double(value: Value, what: str) -> float:
    if not isinstance(value, float):
        raise Fault(f"{what} must be a double, not a {type_name(value)}")
    return value


def truth(value: Value, what: str) -> bool:
    """A double as a condition: nonzero is true."""
    return require_double(value, what) != 0.0


# -- formatting (autoScaleRun.results) ------------------------------------------------------
def format_double(value: float) -> str:
    """Six significant digits, as Azure writes doubles (``96.6667``, ``0.5``, ``3``)."""
    if value == 0:
        return "0"
    return f"{value:.6g}"


def format_interval(interval: Interval) -> str:
    """.NET TimeSpan's constant format: ``[-][d.]hh:mm:ss[.fffffff]``."""
    ticks = abs(interval.ticks)
    sign = "-" if interval.ticks < 0 else ""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02}:{minutes:02}:{seconds:02}"
    return f"{text}.{fraction:07}" if fraction else text


def format_timestamp(moment: Timestamp) -> str:
    """ISO 8601 in UTC with milliseconds: ``2016-10-14T18:36:43.282Z``."""
    at = moment.at
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{at.microsecond // 1000:03}Z"


def format_value(value: Value) -> str:
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, Vec):
        return "[" + ",".join(format_double(item) for item in value.items) + "]"
    if isinstance(value, Timestamp):
        return format_timestamp(value)
    if isinstance(value, Interval):
        return format_interval(value)
    return value


def is_finite(value: float) -> bool:
    return math.isfinite(value)
