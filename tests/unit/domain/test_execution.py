"""Task execution transitions: assigned, preparing, running, exited with retries."""

from datetime import datetime, timezone

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.execution import assigned, exited, running

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
NODE = {"poolId": "p", "nodeId": "n"}


def task(retries: int = 0) -> dict:
    return {"id": "t", "state": "active", "stateTransitionTime": "2025-12-31T00:00:00Z", "requiredSlots": 1,
            "constraints": {"maxTaskRetryCount": retries}, "executionInfo": {"retryCount": 0, "requeueCount": 0}}


def test_preparing_then_running_then_success() -> None:
    body = assigned(task(), NODE, NOW, preparing=True)
    assert body["state"] == "preparing" and "startTime" not in body["executionInfo"]
    assert body["previousState"] == "active" and body["nodeInfo"] == NODE
    body = running(body, NOW)
    assert body["state"] == "running" and body["executionInfo"]["startTime"]
    body = exited(body, 0, NOW)
    assert body["state"] == "completed"
    assert body["executionInfo"]["result"] == "success" and body["executionInfo"]["exitCode"] == 0
    assert "failureInfo" not in body["executionInfo"]


def test_failure_retries_until_the_limit() -> None:
    body = assigned(task(retries=2), NODE, NOW, preparing=False)
    for attempt in (1, 2):
        body = exited(body, 5, NOW)
        assert body["state"] == "active" and body["executionInfo"]["retryCount"] == attempt
        body = assigned(body, NODE, NOW, preparing=False)
    body = exited(body, 5, NOW)
    assert body["state"] == "completed" and body["executionInfo"]["result"] == "failure"
    assert body["executionInfo"]["failureInfo"]["category"] == "usererror"


def test_unlimited_retries() -> None:
    body = assigned(task(retries=-1), NODE, NOW, preparing=False)
    for _ in range(50):
        body = assigned(exited(body, 1, NOW), NODE, NOW, preparing=False)
    assert body["executionInfo"]["retryCount"] == 50


def test_invalid_transitions_are_refused() -> None:
    with pytest.raises(BatchError):
        exited(task(), 0, NOW)
    with pytest.raises(BatchError):
        running(task(), NOW)
    with pytest.raises(BatchError):
        assigned(assigned(task(), NODE, NOW, preparing=False), NODE, NOW, preparing=False)
