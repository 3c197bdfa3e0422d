"""The operators, exactly as the docs' "Operations" table allows them.

=====================================  ====================  ============
Operation                              Operators             Result
=====================================  ====================  ============
double op double                       + - * /               double
double op timeinterval                 *                     timeinterval
doubleVec op double                    + - * /               doubleVec
doubleVec op doubleVec                 + - * /               doubleVec
timeinterval op double                 * /                   timeinterval
timeinterval op timeinterval           + -                   timeinterval
timeinterval op timestamp              +                     timestamp
timestamp op timeinterval              +                     timestamp
timestamp op timestamp                 -                     timeinterval
op double                              - !                   double
op timeinterval                        -                     timeinterval
double/string/timestamp/timeinterval   < <= == >= > !=       double
double op double                       && ||                 double
=====================================  ====================  ============

Every other combination is an evaluation error. Doubles follow IEEE 754
(``1/0`` is infinity), as the service's doubles do.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from .errors import Fault
from .values import Interval, Timestamp, Value, Vec, between, shift, type_name

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
}
_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq, ">=": operator.ge, ">": operator.gt, "!=": operator.ne,
}
_COMPARABLE = (float, str, Timestamp, Interval)


def divide(a: float, b: float) -> float:
    """IEEE division: ``x/0`` is ±infinity, ``0/0`` NaN."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def arithmetic(op: str, a: float, b: float) -> float:
    if op == "/":
        return divide(a, b)
    try:
        return _ARITHMETIC[op](a, b)
    except OverflowError:
        return math.inf


def _scale(interval: Interval, factor: float, divide: bool = False) -> Interval:
    ticks = interval.ticks / factor if divide else interval.ticks * factor
    if not math.isfinite(ticks) or abs(ticks) > 2**63:
        raise Fault("the timeinterval is out of range")
    return Interval(round(ticks))


def _unsupported(op: str, a: Value, b: Value) -> Fault:
    return Fault(f"operator '{op}' is not defined for {type_name(a)} and {type_name(b)}")


def binary(op: str, a: Value, b: Value) -> Value:
    """``a op b`` for every operator but ``&&`` and ``||`` (see :func:`logical`)."""
    if op in _COMPARISONS:
        if type(a) is type(b) and isinstance(a, _COMPARABLE):
            return 1.0 if _COMPARISONS[op](a, b) else 0.0
        raise _unsupported(op, a, b)
    if isinstance(a, float):
        if isinstance(b, float):
            return arithmetic(op, a, b)
        if isinstance(b, Interval) and op == "*":
            return _scale(b, a)
    elif isinstance(a, Vec):
        if isinstance(b, float):
            return Vec(tuple(arithmetic(op, x, b) for x in a.items))
        if isinstance(b, Vec):
            if len(a.items) != len(b.items):
                raise Fault(f"operator '{op}' needs doubleVecs of the same length, "
                            f"not {len(a.items)} and {len(b.items)}")
            return Vec(tuple(arithmetic(op, x, y) for x, y in zip(a.items, b.items)))
    elif isinstance(a, Interval):
        if isinstance(b, float) and op == "*":
            return _scale(a, b)
        if isinstance(b, float) and op == "/":
            if b == 0.0:
                raise Fault("division of a timeinterval by zero")
            return _scale(a, b, divide=True)
        if isinstance(b, Interval) and op in "+-":
            return Interval(a.ticks + b.ticks if op == "+" else a.ticks - b.ticks)
        if isinstance(b, Timestamp) and op == "+":
            return shift(b, a)
    elif isinstance(a, Timestamp):
        if isinstance(b, Interval) and op == "+":
            return shift(a, b)
        if isinstance(b, Timestamp) and op == "-":
            return between(a, b)
    raise _unsupported(op, a, b)


def logical(op: str, a: Value, b: Value) -> float:
    """``&&`` and ``||`` on doubles (nonzero is true); the result is 1 or 0."""
    if not (isinstance(a, float) and isinstance(b, float)):
        raise _unsupported(op, a, b)
    result = (a != 0.0 and b != 0.0) if op == "&&" else (a != 0.0 or b != 0.0)
    return 1.0 if result else 0.0


def unary(op: str, a: Value) -> Value:
    if isinstance(a, float):
        return -a if op == "-" else (1.0 if a == 0.0 else 0.0)
    if isinstance(a, Interval) and op == "-":
        return Interval(-a.ticks)
    raise Fault(f"operator '{op}' is not defined for a {type_name(a)}")
