"""Ids, durations and the request-body decoding that turns bad input into a 400."""

from datetime import timedelta

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.models import JobAddParameter, TaskAddCollectionParameter, decode
from openbatch.domain.validation import UNLIMITED_DURATION, check_id, parse_duration


@pytest.mark.parametrize("good", ["a", "A-b_c", "x" * 64, "0"])
def test_valid_ids(good: str) -> None:
    assert check_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "a/b", "é", "a.b", "abc\n", "\nabc"])
def test_invalid_ids(bad: str) -> None:
    with pytest.raises(BatchError) as caught:
        check_id(bad)
    assert caught.value.code == "InvalidPropertyValue" and caught.value.status == 400


@pytest.mark.parametrize(
    ("text", "span"),
    [("PT15M", timedelta(minutes=15)), ("P7D", timedelta(days=7)), ("PT1H30M", timedelta(hours=1, minutes=30)),
     ("PT0.5S", timedelta(seconds=0.5)), ("P1DT2H", timedelta(days=1, hours=2))],
)
def test_durations(text: str, span: timedelta) -> None:
    assert parse_duration(text, "x") == span


def test_unlimited_duration_parses() -> None:
    assert parse_duration(UNLIMITED_DURATION, "x") > timedelta(days=10_000_000)


@pytest.mark.parametrize("bad", ["", "P", "PT", "15M", "PT-1M", "P1Y", "garbage", "P1DT", "PT1M\n"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(BatchError):
        parse_duration(bad, "x")


def test_decode_reports_missing_property_path() -> None:
    with pytest.raises(BatchError) as caught:
        decode(b'{"id": "j", "poolInfo": {}, "jobPreparationTask": {}}', JobAddParameter)
    assert caught.value.code == "MissingRequiredProperty"
    assert ("PropertyName", "jobPreparationTask/commandLine") in caught.value.values


def test_decode_reports_wrong_type_path() -> None:
    with pytest.raises(BatchError) as caught:
        decode(b'{"id": "j", "poolInfo": {"poolId": "p"}, "priority": "high"}', JobAddParameter)
    assert caught.value.code == "InvalidPropertyValue"
    assert ("PropertyName", "priority") in caught.value.values


def test_decode_accepts_numeric_strings_like_the_az_cli_sends() -> None:
    job = decode(b'{"id": "j", "poolInfo": {"poolId": "p"}, "priority": "7", "usesTaskDependencies": "true"}',
                 JobAddParameter)
    assert job.priority == 7 and job.usesTaskDependencies is True


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b'{"value": 3}', b"\xff\xfe"])
def test_decode_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(BatchError) as caught:
        decode(body, TaskAddCollectionParameter)
    assert caught.value.status == 400
