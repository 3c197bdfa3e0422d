"""AddTaskCollection's one-pass decoding and the bodies of new tasks."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import msgspec
import pytest

from openbatch.domain import clock
from openbatch.domain.errors import BatchError
from openbatch.domain.models import TaskAddCollectionParameter, TaskAddParameter, TaskCollection, decode
from openbatch.domain.tasks import new_task_bodies, new_task_body

ITEMS = [
    {"id": "a", "commandLine": "x"},
    {"id": "a", "commandLine": "x", "requiredSlots": "2"},
    {"id": "a", "commandLine": "x", "requiredSlots": 2.0},
    {"id": "a", "commandLine": "x", "displayName": None, "unknownProperty": [1]},
    {"id": "a", "commandLine": "x", "constraints": {"maxTaskRetryCount": "3", "retentionTime": "PT1H"}},
    {"id": "a", "commandLine": "x", "containerSettings": {"x": [1, 2.5, None]},
     "outputFiles": [{"filePattern": "*", "destination": {"container": {"containerUrl": "https://a/c", "z": 1}},
                      "uploadOptions": {"uploadCondition": "tasksuccess"}}]},
    {"id": "a", "commandLine": "x", "exitConditions": {"default": {"jobAction": "none"}}},
    {"id": "a", "commandLine": "x", "environmentSettings": [{"name": "n", "value": "1", "extra": 2}]},
    {"id": "a", "commandLine": "x", "multiInstanceSettings": {"coordinationCommandLine": "c"}},
    {"id": "a", "commandLine": "x", "dependsOn": {"taskIds": ["b"], "taskIdRanges": [{"start": 1, "end": 2}]}},
]
BAD_ITEMS = [
    {"id": 5, "commandLine": "x"},
    {"id": "a"},
    {"id": "a", "commandLine": "x", "requiredSlots": 2.5},
    {"id": "a", "commandLine": "x", "requiredSlots": True},
    {"id": "a", "commandLine": "x", "exitConditions": {"default": {"jobAction": "NONE"}}},
    {"id": "a", "commandLine": "x", "outputFiles": [{"a": 1}]},
    "not a task",
]


def _one_by_one(body: bytes) -> list[TaskAddParameter]:
    return [decode(item, TaskAddParameter) for item in decode(body, TaskAddCollectionParameter).value]


@pytest.mark.parametrize("item", ITEMS)
def test_one_pass_decodes_what_item_by_item_decodes(item: dict) -> None:
    body = json.dumps({"value": [item, {"id": "other", "commandLine": "y"}]}).encode()
    assert decode(body, TaskCollection).value == _one_by_one(body)


def test_duplicate_keys_decode_alike() -> None:
    body = b'{"value": [{"id": "a", "id": "b", "commandLine": "x", "commandLine": "y"}]}'
    assert decode(body, TaskCollection).value == _one_by_one(body)


@pytest.mark.parametrize("item", BAD_ITEMS)
def test_one_pass_refuses_a_body_with_any_bad_item(item: object) -> None:
    body = json.dumps({"value": [{"id": "ok", "commandLine": "x"}, item]}).encode()
    with pytest.raises(BatchError):
        decode(body, TaskCollection)


def _reference_body(task: TaskAddParameter, job: dict, now: datetime) -> dict:
    """A new task's body as built one at a time before bodies were built per call."""
    body = msgspec.to_builtins(task)
    body["constraints"] = {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "retentionTime": "P7D",
                           "maxTaskRetryCount": job.get("constraints", {}).get("maxTaskRetryCount", 0),
                           **(body.get("constraints") or {})}
    body.setdefault("requiredSlots", 1)
    if "multiInstanceSettings" in body:
        body["multiInstanceSettings"].setdefault("numberOfInstances", 1)
    stamp = clock.to_wire(now)
    body.update(creationTime=stamp, state="active", stateTransitionTime=stamp)
    body["executionInfo"] = {"retryCount": 0, "requeueCount": 0}
    return body


def test_bodies_of_one_call_are_built_like_single_ones() -> None:
    job = {"id": "j", "constraints": {"maxTaskRetryCount": 2}}
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    tasks = [decode(msgspec.json.encode(item), TaskAddParameter) for item in ITEMS]
    body_of = new_task_bodies(job, now)
    bodies = [body_of(task) for task in tasks]
    assert bodies == [new_task_body(task, job, now) for task in tasks]
    assert bodies == [_reference_body(task, job, now) for task in tasks]
    assert bodies[0]["constraints"] == {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "retentionTime": "P7D",
                                        "maxTaskRetryCount": 2}
    assert bodies[4]["constraints"]["maxTaskRetryCount"] == 3 and bodies[4]["constraints"]["retentionTime"] == "PT1H"
    assert bodies[8]["multiInstanceSettings"]["numberOfInstances"] == 1
    assert bodies[0]["creationTime"] == bodies[0]["stateTransitionTime"] == clock.to_wire(now)
    assert bodies[0]["state"] == "active" and bodies[0]["requiredSlots"] == 1
    bodies[0]["constraints"]["retentionTime"] = "changed"  # no body shares its parts with another
    bodies[0]["executionInfo"]["retryCount"] = 9
    assert bodies[1]["constraints"]["retentionTime"] == "P7D" and bodies[1]["executionInfo"]["retryCount"] == 0
