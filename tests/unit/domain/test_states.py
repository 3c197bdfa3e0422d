"""Job state transitions: which action is allowed from which state, and the 409 code otherwise."""

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.states import JOB_ACTION_FROM, JobState, check_job_action

EXPECTED_CODES = {
    ("update", JobState.TERMINATING): "JobBeingTerminated",
    ("update", JobState.COMPLETED): "JobCompleted",
    ("update", JobState.DELETING): "JobBeingDeleted",
    ("disable", JobState.ENABLING): "JobNotActive",
    ("disable", JobState.COMPLETED): "JobCompleted",
    ("enable", JobState.COMPLETED): "JobCompleted",
    ("enable", JobState.DELETING): "JobBeingDeleted",
    ("terminate", JobState.COMPLETED): "JobCompleted",
    ("terminate", JobState.TERMINATING): "JobBeingTerminated",
    ("delete", JobState.DELETING): "JobBeingDeleted",
    ("add_task", JobState.COMPLETED): "JobCompleted",
    ("add_task", JobState.TERMINATING): "JobBeingTerminated",
}


@pytest.mark.parametrize("action", sorted(JOB_ACTION_FROM))
@pytest.mark.parametrize("state", list(JobState))
def test_every_action_from_every_state(action: str, state: JobState) -> None:
    if state in JOB_ACTION_FROM[action]:
        check_job_action(action, state)
        return
    with pytest.raises(BatchError) as caught:
        check_job_action(action, state)
    assert caught.value.status == 409
    expected = EXPECTED_CODES.get((action, state))
    if expected:
        assert caught.value.code == expected


def test_delete_is_allowed_from_active_and_completed() -> None:
    check_job_action("delete", JobState.ACTIVE)
    check_job_action("delete", JobState.COMPLETED)
