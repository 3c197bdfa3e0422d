"""The predefined functions (docs, "Functions").

doubleVecList functions (avg, len, max, min, norm, range, std, sum) flatten their
arguments. lg, ln, log, ceil, floor and round return a double for one double
argument and a doubleVec otherwise ("a vec(double) must be explicitly passed").
``stop()`` and ``time()`` are handled with the evaluation state; see :func:`call`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime

from .errors import Fault, Stop
from .values import Timestamp, Value, Vec, flatten, require_double, type_name, utc


def _nonempty(values: list[float], name: str) -> list[float]:
    if not values:
        raise Fault(f"{name}() needs at least one value")
    return values


def _sum(values: list[float]) -> float:
    """An exact sum, or IEEE's answer where infinities meet or the sum overflows."""
    try:
        return math.fsum(values)
    except (ValueError, OverflowError):
        return sum(values, 0.0)


def _avg(values: list[float]) -> float:
    return _sum(_nonempty(values, "avg")) / len(values)


def _std(values: list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    _nonempty(values, "std")
    if len(values) == 1:
        return 0.0
    mean = _sum(values) / len(values)
    return math.sqrt(_sum([(x - mean) * (x - mean) for x in values]) / (len(values) - 1))


_LIST_FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "avg": _avg,
    "len": lambda v: float(len(v)),
    "max": lambda v: max(_nonempty(v, "max")),
    "min": lambda v: min(_nonempty(v, "min")),
    "norm": lambda v: math.sqrt(_sum([x * x for x in v])),
    "range": lambda v: max(_nonempty(v, "range")) - min(v),
    "std": _std,
    "sum": _sum,
}


def _log(f: Callable[[float], float]) -> Callable[[float], float]:
    """A logarithm with C's domain: log(0) is -infinity, log(x < 0) NaN."""
    def log(x: float) -> float:
        if math.isnan(x) or x < 0:
            return math.nan
        return -math.inf if x == 0 else f(x)
    return log


def _round(x: float) -> float:
    """Nearest integer, halfway cases away from zero (C's ``round``)."""
    if not math.isfinite(x):
        return x
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _integral(f: Callable[[float], int]) -> Callable[[float], float]:
    return lambda x: float(f(x)) if math.isfinite(x) else x


_ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "lg": _log(math.log2), "ln": _log(math.log), "log": _log(math.log10),
    "ceil": _integral(math.ceil), "floor": _integral(math.floor), "round": _round,
}


def _percentile(args: list[Value]) -> float:
    """``percentile(v, p)``: the element at the p-th percentile (nearest rank), 0 <= p <= 100."""
    values = sorted(flatten(args[:1], "percentile()"))
    p = require_double(args[1], "the percentile")
    if not 0.0 <= p <= 100.0:
        raise Fault(f"the percentile must be between 0 and 100, not {p:g}")
    _nonempty(values, "percentile")
    rank = math.ceil(p / 100.0 * len(values))
    return values[max(rank, 1) - 1]


def _val(args: list[Value]) -> float:
    """``val(v, i)``: element ``i`` (from zero) of ``v``."""
    values = flatten(args[:1], "val()")
    index = require_double(args[1], "the index of val()")
    if not math.isfinite(index) or not 0 <= int(index) < len(values):
        raise Fault(f"val() index {index:g} is out of range for a doubleVec of length {len(values)}")
    return values[int(index)]


_W3C_FORMATS = ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z",
                "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f")


def parse_time(text: str) -> Timestamp:
    """A W3C-DTF (ISO 8601 profile) or RFC 1123 date-time, as UTC."""
    stripped = text.strip()
    w3c = stripped[:-1] + "+00:00" if stripped.endswith(("Z", "z")) else stripped
    if "." in w3c:  # strptime's %f takes at most 6 digits
        head, _, tail = w3c.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        w3c = head + "." + tail[:min(digits, 6)] + tail[digits:]
    for fmt in _W3C_FORMATS:
        try:
            return Timestamp(utc(datetime.strptime(w3c, fmt)))
        except ValueError:
            pass
    try:
        return Timestamp(utc(parsedate_to_datetime(stripped)))
    except (TypeError, ValueError, IndexError):
        raise Fault(f'time() cannot parse "{text}": use W3C-DTF or RFC 1123') from None


def call(name: str, args: list[Value], now: Timestamp, rng: random.Random | None) -> Value:
    """Apply function ``name`` (arity is checked by the parser)."""
    if name in _LIST_FUNCTIONS:
        return _LIST_FUNCTIONS[name](flatten(args, f"{name}()"))
    if name in _ELEMENTWISE:
        f = _ELEMENTWISE[name]
        if len(args) == 1 and isinstance(args[0], float):
            return f(args[0])
        return Vec(tuple(f(x) for x in flatten(args, f"{name}()")))
    if name == "percentile":
        return _percentile(args)
    if name == "val":
        return _val(args)
    if name == "rand":
        return (rng or random).random()
    if name == "stop":
        raise Stop()
    if name == "time":
        if not args:
            return now
        if not isinstance(args[0], str):
            raise Fault(f"time() takes a string, not a {type_name(args[0])}")
        return now if args[0] == "" else parse_time(args[0])
    raise Fault(f"unknown function '{name}'")  # unreachable: the parser checks names
