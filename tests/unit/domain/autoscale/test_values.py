"""How autoScaleRun.results writes each type, and the timestamp members."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from openbatch.domain.autoscale.values import (
    Interval,
    Timestamp,
    Vec,
    format_double,
    format_interval,
    format_value,
    utc,
)


@pytest.mark.parametrize(("number", "text"), [
    (0.0, "0"), (-0.0, "0"), (3.0, "3"), (0.5, "0.5"), (29 / 30 * 100, "96.6667"), (-2.25, "-2.25"),
    (1 / 3, "0.333333"), (123456.0, "123456"), (1234567.0, "1.23457e+06"), (1e-7, "1e-07"),
    (float("inf"), "inf"), (float("nan"), "nan"),
])
def test_doubles_have_six_significant_digits(number: float, text: str) -> None:
    assert format_double(number) == text


@pytest.mark.parametrize(("ticks", "text"), [
    (0, "00:00:00"), (600_000_000, "00:01:00"), (36_000_000_000, "01:00:00"), (864_000_000_000, "1.00:00:00"),
    (-9_000_000_000, "-00:15:00"), (1, "00:00:00.0000001"), (15_000_000, "00:00:01.5000000"),
    (315_360_000_000_000, "365.00:00:00"),
])
def test_intervals_use_the_timespan_format(ticks: int, text: str) -> None:
    assert format_interval(Interval(ticks)) == text


def test_other_types() -> None:
    assert format_value(Vec((1.0, 1.0, 2.5))) == "[1,1,2.5]"
    assert format_value(Vec(())) == "[]"
    assert format_value("taskcompletion") == "taskcompletion"
    moment = Timestamp(datetime(2016, 10, 14, 18, 36, 43, 282_500, tzinfo=UTC))
    assert format_value(moment) == "2016-10-14T18:36:43.282Z"


def test_timestamp_members_monday_is_1_sunday_is_0() -> None:
    monday = Timestamp(datetime(2024, 3, 4, 13, 5, 9, tzinfo=UTC))
    assert [monday.member(m) for m in ("year", "month", "day", "weekday", "hour", "minute", "second")] == [
        2024.0, 3.0, 4.0, 1.0, 13.0, 5.0, 9.0]
    days = [Timestamp(datetime(2024, 3, 4, tzinfo=UTC) + timedelta(days=d)).member("weekday") for d in range(7)]
    assert days == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_utc_normalises() -> None:
    assert utc(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    plus2 = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus2).hour == 10 and utc(plus2).tzinfo is UTC
