"""Every row of the docs' operations table, and the combinations it does not allow."""

import math
from datetime import UTC, datetime

import pytest

from openbatch.domain.autoscale.errors import Fault
from openbatch.domain.autoscale.operators import binary, logical, unary
from openbatch.domain.autoscale.values import Interval, Timestamp, Vec

MINUTE = Interval(600_000_000)
T0 = Timestamp(datetime(2024, 1, 1, 12, tzinfo=UTC))
T1 = Timestamp(datetime(2024, 1, 1, 12, 1, tzinfo=UTC))
V = Vec((1.0, 2.0, 4.0))


@pytest.mark.parametrize(("a", "op", "b", "result"), [
    # double op double: + - * /
    (6.0, "+", 2.0, 8.0), (6.0, "-", 2.0, 4.0), (6.0, "*", 2.0, 12.0), (6.0, "/", 2.0, 3.0),
    # double * timeinterval
    (2.0, "*", MINUTE, Interval(1_200_000_000)), (0.5, "*", MINUTE, Interval(300_000_000)),
    # doubleVec op double
    (V, "+", 1.0, Vec((2.0, 3.0, 5.0))), (V, "-", 1.0, Vec((0.0, 1.0, 3.0))),
    (V, "*", 2.0, Vec((2.0, 4.0, 8.0))), (V, "/", 2.0, Vec((0.5, 1.0, 2.0))),
    # doubleVec op doubleVec
    (V, "+", V, Vec((2.0, 4.0, 8.0))), (V, "-", V, Vec((0.0, 0.0, 0.0))),
    (V, "*", V, Vec((1.0, 4.0, 16.0))), (V, "/", V, Vec((1.0, 1.0, 1.0))),
    # timeinterval op double
    (MINUTE, "*", 3.0, Interval(1_800_000_000)), (MINUTE, "/", 4.0, Interval(150_000_000)),
    # timeinterval op timeinterval
    (MINUTE, "+", MINUTE, Interval(1_200_000_000)), (MINUTE, "-", MINUTE, Interval(0)),
    # timeinterval + timestamp, timestamp + timeinterval, timestamp - timestamp
    (MINUTE, "+", T0, T1), (T0, "+", MINUTE, T1), (T1, "-", T0, MINUTE), (T0, "-", T1, Interval(-600_000_000)),
])
def test_arithmetic_rows(a: object, op: str, b: object, result: object) -> None:
    assert binary(op, a, b) == result


COMPARABLE = [(1.0, 2.0), ("abc", "abd"), (T0, T1), (Interval(1), MINUTE)]


@pytest.mark.parametrize(("low", "high"), COMPARABLE)
@pytest.mark.parametrize(("op", "expect_lh", "expect_eq"), [
    ("<", 1.0, 0.0), ("<=", 1.0, 1.0), ("==", 0.0, 1.0), (">=", 0.0, 1.0), (">", 0.0, 0.0), ("!=", 1.0, 0.0),
])
def test_comparison_rows(low: object, high: object, op: str, expect_lh: float, expect_eq: float) -> None:
    assert binary(op, low, high) == expect_lh
    assert binary(op, low, low) == expect_eq


@pytest.mark.parametrize(("op", "a", "b", "result"), [
    ("&&", 1.0, 2.0, 1.0), ("&&", 1.0, 0.0, 0.0), ("&&", 0.0, 0.0, 0.0),
    ("||", 0.0, 0.0, 0.0), ("||", 0.0, -1.0, 1.0), ("||", 3.0, 0.0, 1.0),
])
def test_logical_rows(op: str, a: float, b: float, result: float) -> None:
    assert logical(op, a, b) == result


def test_unary_rows() -> None:
    assert unary("-", 2.0) == -2.0
    assert unary("!", 0.0) == 1.0 and unary("!", 5.0) == 0.0
    assert unary("-", MINUTE) == Interval(-600_000_000)


def test_ieee_division() -> None:
    assert binary("/", 1.0, 0.0) == math.inf
    assert binary("/", -1.0, 0.0) == -math.inf
    assert math.isnan(binary("/", 0.0, 0.0))
    assert binary("/", V, 0.0) == Vec((math.inf, math.inf, math.inf))


@pytest.mark.parametrize(("a", "op", "b", "message"), [
    (2.0, "*", V, "operator '*' is not defined for double and doubleVec"),
    (1.0, "+", MINUTE, "operator '+' is not defined for double and timeinterval"),
    (1.0, "/", MINUTE, "operator '/' is not defined for double and timeinterval"),
    (MINUTE, "+", 1.0, "operator '+' is not defined for timeinterval and double"),
    (MINUTE, "*", MINUTE, "operator '*' is not defined for timeinterval and timeinterval"),
    (MINUTE, "/", MINUTE, "operator '/' is not defined for timeinterval and timeinterval"),
    (MINUTE, "-", T0, "operator '-' is not defined for timeinterval and timestamp"),
    (T0, "-", MINUTE, "operator '-' is not defined for timestamp and timeinterval"),
    (T0, "+", T0, "operator '+' is not defined for timestamp and timestamp"),
    (T0, "*", 2.0, "operator '*' is not defined for timestamp and double"),
    ("a", "+", "b", "operator '+' is not defined for string and string"),
    (V, "<", V, "operator '<' is not defined for doubleVec and doubleVec"),
    (V, "==", 1.0, "operator '==' is not defined for doubleVec and double"),
    (1.0, "<", "1", "operator '<' is not defined for double and string"),
    (T0, "==", MINUTE, "operator '==' is not defined for timestamp and timeinterval"),
    (V, "+", Vec((1.0,)), "operator '+' needs doubleVecs of the same length, not 3 and 1"),
    (MINUTE, "/", 0.0, "division of a timeinterval by zero"),
])
def test_combinations_the_table_does_not_allow(a: object, op: str, b: object, message: str) -> None:
    with pytest.raises(Fault) as caught:
        binary(op, a, b)
    assert caught.value.detail == message


@pytest.mark.parametrize(("op", "a", "message"), [
    ("!", MINUTE, "operator '!' is not defined for a timeinterval"),
    ("-", V, "operator '-' is not defined for a doubleVec"),
    ("-", "s", "operator '-' is not defined for a string"),
    ("!", T0, "operator '!' is not defined for a timestamp"),
])
def test_unary_errors(op: str, a: object, message: str) -> None:
    with pytest.raises(Fault) as caught:
        unary(op, a)
    assert caught.value.detail == message


def test_logical_needs_doubles() -> None:
    with pytest.raises(Fault, match="operator '&&' is not defined for doubleVec and double"):
        logical("&&", V, 1.0)
