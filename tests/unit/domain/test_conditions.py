"""Conditional headers: 304 on reads, 412 on writes."""

from datetime import datetime, timedelta, timezone

import pytest

from openbatch.domain.conditions import Conditions, check
from openbatch.domain.errors import BatchError

MODIFIED = datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("conditions", "holds"),
    [
        (Conditions(if_match="0x1"), True),
        (Conditions(if_match='"0x1"'), True),
        (Conditions(if_match="*"), True),
        (Conditions(if_match="0x2"), False),
        (Conditions(if_none_match="0x2"), True),
        (Conditions(if_none_match="0x1"), False),
        (Conditions(if_none_match="*"), False),
        (Conditions(if_modified_since=MODIFIED.replace(microsecond=0) - timedelta(seconds=1)), True),
        (Conditions(if_modified_since=MODIFIED.replace(microsecond=0)), False),
        (Conditions(if_unmodified_since=MODIFIED.replace(microsecond=0)), True),
        (Conditions(if_unmodified_since=MODIFIED - timedelta(seconds=5)), False),
    ],
)
@pytest.mark.parametrize("read", [True, False])
def test_conditions(conditions: Conditions, holds: bool, read: bool) -> None:
    if holds:
        check(conditions, "0x1", MODIFIED, read=read)
        return
    with pytest.raises(BatchError) as caught:
        check(conditions, "0x1", MODIFIED, read=read)
    assert caught.value.code == "ConditionNotMet"
    assert caught.value.status == (304 if read else 412)
