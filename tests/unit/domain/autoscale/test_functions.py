"""Each predefined function, through formulas (doubleVecList flattening included)."""

import random

import pytest

from openbatch.domain.autoscale.errors import EVALUATION_ERROR
from openbatch.domain.autoscale.functions import parse_time
from tests.unit.domain.autoscale.support import NOW, error, run, value


@pytest.mark.parametrize(("expression", "text"), [
    # doubleVecList functions flatten doubles and doubleVecs: avg(v, 7) == avg(1, 2, 3, 7)
    ("avg({1, 2, 3})", "2"), ("avg({1, 2, 3}, 7)", "3.25"), ("avg(1, 2, 3, 7)", "3.25"), ("avg(5)", "5"),
    ("len({1, 2}, 3, {})", "3"), ("len()", "0"), ("len({})", "0"),
    ("max(1, {5, 2}, -1)", "5"), ("min(1, {5, 2}, -1)", "-1"),
    ("norm({3, 4})", "5"), ("norm()", "0"),
    ("range({4, 9, 1})", "8"), ("sum({1, 2}, 3.5)", "6.5"), ("sum()", "0"),
    ("std({2, 4, 4, 4, 5, 5, 7, 9})", "2.13809"), ("std(3)", "0"),
    # lg, ln, log: double for one double, doubleVec for a vec or a list
    ("lg(8)", "3"), ("lg({8})", "[3]"), ("lg(2, 4)", "[1,2]"), ("lg({1, 16})", "[0,4]"),
    ("ln(1)", "0"), ("ln({1})", "[0]"), ("log(1000)", "3"), ("log({10, 100})", "[1,2]"),
    ("log(0)", "-inf"), ("lg(-1)", "nan"),
    # ceil, floor, round (halfway away from zero)
    ("ceil(1.2)", "2"), ("ceil(-1.2)", "-1"), ("ceil({1.2, 2})", "[2,2]"),
    ("floor(1.8)", "1"), ("floor(-1.2)", "-2"), ("floor(1.5, 2.5)", "[1,2]"),
    ("round(2.5)", "3"), ("round(-2.5)", "-3"), ("round(2.4)", "2"), ("round({0.5, 1.49})", "[1,1]"),
    # percentile (nearest rank) and val (zero-based)
    ("percentile({15, 20, 35, 40, 50}, 30)", "20"), ("percentile({15, 20, 35, 40, 50}, 100)", "50"),
    ("percentile({15, 20, 35, 40, 50}, 0)", "15"), ("percentile({3, 1, 2}, 50)", "2"),
    ("val({10, 20, 30}, 0)", "10"), ("val({10, 20, 30}, 2)", "30"), ("val({10, 20, 30}, 1.9)", "20"),
    # time(): now, or a W3C-DTF / RFC 1123 string
    ("time()", "2024-03-04T10:30:00.000Z"), ('time("")', "2024-03-04T10:30:00.000Z"),
    ('time("2015-01-01T10:00:00Z")', "2015-01-01T10:00:00.000Z"),
    ('time("2015-01-01T10:00:00.1234567+02:00")', "2015-01-01T08:00:00.123Z"),
    ('time("2015-06-01")', "2015-06-01T00:00:00.000Z"), ('time("2015")', "2015-01-01T00:00:00.000Z"),
    ('time("Thu, 01 Jan 2015 10:00:00 GMT")', "2015-01-01T10:00:00.000Z"),
    ('time("2015-01-01T10:00Z").hour', "10"),
])
def test_functions(expression: str, text: str) -> None:
    assert value(expression) == text


def test_rand_uses_the_seeded_generator() -> None:
    expected = random.Random(3).random()
    assert value("rand()", seed=3) == f"{expected:.6g}"
    assert 0.0 <= float(value("rand()", seed=None)) < 1.0


def test_parse_time_keeps_utc() -> None:
    assert parse_time("2015-01-01T10:00:00-05:00").at.hour == 15
    assert parse_time(" Thu, 01 Jan 2015 10:00:00 GMT ").at.tzinfo is not None
    assert parse_time("2024-03-04T10:30").at == NOW


@pytest.mark.parametrize(("expression", "detail"), [
    ("avg()", "avg() needs at least one value"),
    ("max({})", "max() needs at least one value"),
    ("min({})", "min() needs at least one value"),
    ("range()", "range() needs at least one value"),
    ("std({})", "std() needs at least one value"),
    ('avg(1, "a")', "avg() takes doubles and doubleVecs, not a string"),
    ("sum(time())", "sum() takes doubles and doubleVecs, not a timestamp"),
    ("lg(TimeInterval_Second)", "lg() takes doubles and doubleVecs, not a timeinterval"),
    ("percentile({1, 2}, 101)", "the percentile must be between 0 and 100, not 101"),
    ("percentile({}, 50)", "percentile() needs at least one value"),
    ('percentile({1}, "x")', "the percentile must be a double, not a string"),
    ("val({1, 2}, 2)", "val() index 2 is out of range for a doubleVec of length 2"),
    ("val({1, 2}, -1)", "val() index -1 is out of range for a doubleVec of length 2"),
    ("time(1)", "time() takes a string, not a double"),
    ('time("yesterday")', 'time() cannot parse "yesterday": use W3C-DTF or RFC 1123'),
    ('time("2015-13-01")', 'time() cannot parse "2015-13-01": use W3C-DTF or RFC 1123'),
])
def test_function_errors(expression: str, detail: str) -> None:
    code, message = error(f"r = {expression}")
    assert code == EVALUATION_ERROR
    assert message == f"Line 1, Col 5: {detail}"


def test_stop_ends_evaluation_keeping_what_was_set() -> None:
    evaluation = run("$TargetDedicatedNodes = 3; a = 1; stop(); $TargetDedicatedNodes = 9; b = 2", dedicated=1)
    assert evaluation.error is None
    assert evaluation.target_dedicated == 3
    assert evaluation.results() == ("$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;"
                                    "$NodeDeallocationOption=requeue;a=1")


def test_stop_inside_a_conditional_only_when_reached() -> None:
    assert run("x = 1 ? 2 : stop(); $TargetDedicatedNodes = 4").target_dedicated == 4
    assert run("x = 0 ? 2 : stop(); $TargetDedicatedNodes = 4", dedicated=2).target_dedicated == 2


@pytest.mark.parametrize(("expression", "text"), [
    ("sum({1e308, 1e308})", "inf"), ("sum(1 / 0, -1 / 0)", "nan"), ("avg(1 / 0, 1)", "inf"),
    ("std({1e200, -1e200})", "inf"), ("norm({1e200})", "inf"), ("round(1e300)", "1e+300"),
    ("ceil(1 / 0)", "inf"), ("max(0 / 0, 1)", "nan"),
])
def test_extreme_values_follow_ieee(expression: str, text: str) -> None:
    assert value(expression) == text
