"""Task authentication tokens: issued for one job, verified with the account key, expiring."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openbatch.auth.task_tokens import TOKEN_LIFETIME, check_scope, issue, verify
from openbatch.domain.errors import BatchError

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEYS = {"acct": b"k" * 64, "other": b"o" * 64}


def test_a_token_names_its_account_and_job() -> None:
    scope = verify(issue("acct", KEYS["acct"], "Job-1", NOW), KEYS, NOW)
    assert (scope.account, scope.job_id) == ("acct", "Job-1")
    check_scope(scope, "job-1")   # job ids compare case-insensitively, as everywhere


@pytest.mark.parametrize("job_id", [None, "job-2"])
def test_other_operations_are_refused(job_id: str | None) -> None:
    scope = verify(issue("acct", KEYS["acct"], "job-1", NOW), KEYS, NOW)
    with pytest.raises(BatchError) as info:
        check_scope(scope, job_id)
    assert (info.value.code, info.value.status) == ("InsufficientAccountPermissions", 403)


@pytest.mark.parametrize("token", ["", "ob1", "ob1.x.y", "ob1..", "Bearer x", "ob2.e30.sig"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(BatchError) as info:
        verify(token, KEYS, NOW)
    assert (info.value.code, info.value.status) == ("InvalidAuthenticationInfo", 400)


def test_a_token_signed_with_another_key_or_expired_is_refused() -> None:
    forged = issue("acct", KEYS["other"], "job-1", NOW)
    with pytest.raises(BatchError) as info:
        verify(forged, KEYS, NOW)
    assert (info.value.code, info.value.status) == ("AuthenticationFailed", 403)
    token = issue("acct", KEYS["acct"], "job-1", NOW)
    verify(token, KEYS, NOW + TOKEN_LIFETIME - timedelta(seconds=1))
    with pytest.raises(BatchError) as info:
        verify(token, KEYS, NOW + TOKEN_LIFETIME + timedelta(seconds=1))
    assert "expired" in dict(info.value.values)["AuthenticationErrorDetail"]
