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


# -- the node's own times ----------------------------------------------------------------------------

from datetime import timedelta  # noqa: E402

from openbatch.domain.execution import clock_offset, node_times, recovered  # noqa: E402


def test_times_are_the_nodes_put_on_the_servers_clock() -> None:
    result = {"startTime": "2025-12-31T23:59:58.000000Z", "endTime": "2025-12-31T23:59:59.500000Z"}
    assert node_times(result, NOW, timedelta(0)) == ("2025-12-31T23:59:58.000000Z", "2025-12-31T23:59:59.500000Z")
    # a node whose clock runs an hour ahead: its times are moved back by the offset its report shows
    ahead = {"startTime": "2026-01-01T00:59:58.000000Z", "endTime": "2026-01-01T00:59:59.000000Z"}
    offset = clock_offset("2026-01-01T01:00:00.000000Z", NOW)
    assert offset == timedelta(hours=-1)
    assert node_times(ahead, NOW, offset) == ("2025-12-31T23:59:58.000000Z", "2025-12-31T23:59:59.000000Z")
    # never in the future, the start never after the end, garbage falls back to the server's time
    assert node_times(ahead, NOW, timedelta(0)) == ("2026-01-01T00:00:00.000000Z",) * 2
    assert node_times({"startTime": "soon", "endTime": None}, NOW, timedelta(0)) == ("2026-01-01T00:00:00.000000Z",) * 2
    # within a second the difference is the network's, not the clock's
    assert clock_offset("2025-12-31T23:59:59.300000Z", NOW) == timedelta(0)
    assert clock_offset(None, NOW) == clock_offset("not a time", NOW) == timedelta(0)


def test_exit_takes_the_nodes_times_but_never_before_the_assignment() -> None:
    body = running(assigned(task(), NODE, NOW - timedelta(seconds=10), preparing=True), NOW - timedelta(seconds=10))
    done = exited(body, 0, NOW, "2025-12-31T23:59:51.000000Z", "2025-12-31T23:59:55.000000Z")
    assert (done["executionInfo"]["startTime"], done["executionInfo"]["endTime"]) == (
        "2025-12-31T23:59:51.000000Z", "2025-12-31T23:59:55.000000Z")
    early = exited(body, 0, NOW, "2025-12-31T23:00:00.000000Z", "2025-12-31T23:00:01.000000Z")
    assert early["executionInfo"]["startTime"] == "2025-12-31T23:59:50.000000Z"
    assert early["executionInfo"]["endTime"] == "2025-12-31T23:59:50.000000Z"


def test_a_lost_node_requeues_its_task_until_it_was_lost_too_often() -> None:
    body = running(assigned(task(), NODE, NOW, preparing=True), NOW)
    again = recovered(body, NOW, 1)
    assert again["state"] == "active" and again["executionInfo"]["requeueCount"] == 1
    assert again["executionInfo"]["retryCount"] == 0
    failed = recovered(body, NOW, 4)
    assert failed["state"] == "completed" and failed["executionInfo"]["result"] == "failure"
    assert failed["executionInfo"]["failureInfo"]["code"] == "NodeUnusable"


def test_a_completed_task_is_retained_for_its_retention_time() -> None:
    from openbatch.domain.tasks import retained_until
    from openbatch.domain.validation import UNLIMITED_DURATION

    end = datetime(2026, 1, 1, tzinfo=timezone.utc)
    done = {"state": "completed", "constraints": {"retentionTime": "PT1H"}}
    assert retained_until(done, end) == end + timedelta(hours=1)
    assert retained_until({**done, "state": "running"}, end) is None
    assert retained_until(done, None) is None
    assert retained_until({**done, "constraints": {"retentionTime": UNLIMITED_DURATION}}, end) is None
    assert retained_until({**done, "constraints": {"retentionTime": "P3000000D"}}, end) is None   # past year 9999
