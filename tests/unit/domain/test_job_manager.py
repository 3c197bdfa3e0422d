"""Job manager rules: what a job manager may be, its defaults, its slots."""

from __future__ import annotations

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.job_manager import exclusive_slots, kills_job, manager_task
from openbatch.domain.jobs import new_job_body, validate_new_job
from openbatch.domain.models import JobAddParameter, decode
from tests.unit.domain.test_output_files import NOW


def job(**manager: object) -> JobAddParameter:
    return decode({"id": "j", "poolInfo": {"poolId": "p"},
                   "jobManagerTask": {"id": "manager", "commandLine": "run", **manager}}, JobAddParameter)


def test_defaults_and_the_task_it_becomes() -> None:
    body = new_job_body(job(), NOW)
    assert body["jobManagerTask"] == {"id": "manager", "commandLine": "run", "killJobOnCompletion": True,
                                      "runExclusive": True, "allowLowPriorityNode": True}
    assert kills_job(body) and not kills_job(new_job_body(job(killJobOnCompletion=False), NOW))
    task = manager_task(job(killJobOnCompletion=False, requiredSlots=2, displayName="m"))
    assert (task.id, task.commandLine, task.requiredSlots, task.displayName) == ("manager", "run", 2, "m")


def test_exclusive_slots() -> None:
    body = new_job_body(job(), NOW)
    assert exclusive_slots(body, {"requiredSlots": 1}, 4) == 4
    assert exclusive_slots(body, {"requiredSlots": 1}, None) == 1
    assert exclusive_slots(new_job_body(job(runExclusive=False), NOW), {"requiredSlots": 1}, 4) == 1


@pytest.mark.parametrize("manager, where", [
    ({"id": "bad id!"}, "jobManagerTask/id"),
    ({"requiredSlots": 0}, "jobManagerTask/requiredSlots"),
    ({"containerSettings": {"imageName": "x", "registry": {"identityReference": {"resourceId": "/x"}}}},
     "jobManagerTask/containerSettings/registry/identityReference"),
    ({"constraints": {"maxWallClockTime": "nope"}}, "jobManagerTask/constraints/maxWallClockTime"),
    ({"outputFiles": [{"filePattern": "../../x", "uploadOptions": {"uploadCondition": "taskcompletion"},
                       "destination": {"container": {"containerUrl": "https://a/c"}}}]},
     "jobManagerTask/outputFiles/0/filePattern"),
])
def test_a_job_manager_no_task_could_be_is_refused(manager: dict, where: str) -> None:
    with pytest.raises(BatchError) as info:
        validate_new_job(job(**manager))
    assert dict(info.value.values)["PropertyName"] == where


def test_its_id_differs_from_the_preparation_task() -> None:
    body = {"id": "j", "poolInfo": {"poolId": "p"}, "jobPreparationTask": {"commandLine": "x"},
            "jobManagerTask": {"id": "JobPreparation", "commandLine": "run"}}
    with pytest.raises(BatchError):
        validate_new_job(decode(body, JobAddParameter))
