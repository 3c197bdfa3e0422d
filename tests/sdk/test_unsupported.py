"""Nothing accepted and then silently not done: every refused property answers 400 UnsupportedProperty
naming it, and changes nothing (domain/support.py holds the rules; each one is exercised here)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from openbatch.domain.models import PoolPatchParameter
from openbatch.domain.support import (
    REFUSED_JOB,
    REFUSED_JOB_CHANGE,
    REFUSED_POOL,
    REFUSED_POOL_PROPERTIES,
    REFUSED_RESIZE,
    REFUSED_TASK,
    Refused,
)
from tests.sdk.conftest import API_VERSION, error_values, expect_failure, expect_rest_failure, uid

Q = {"api-version": API_VERSION}

#: A value that asks for each refused leaf (by the last name of its path).
SAMPLES: dict[str, Any] = {
    "identityReference": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/x/identity"},
    "multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "/bin/true"},
    "authenticationTokenSettings": {"access": ["job"]},
    "autoPoolSpecification": {"poolLifetimeOption": "job", "pool": {"vmSize": "standard_d2s_v3"}},
    "jobManagerTask": {"id": "manager", "commandLine": "/bin/true"},
    "extensions": [{"name": "e", "publisher": "p", "type": "t"}],
    "mountConfiguration": [{"nfsMountConfiguration": {"source": "nfs://host/x", "relativeMountPath": "x"}}],
    "certificateReferences": [{"thumbprint": "ab12", "thumbprintAlgorithm": "sha1"}],
    "applicationLicenses": ["maya"],
    "targetLowPriorityNodes": 2,
    "enableAutoScale": True,
}
#: What must sit beside a refused leaf for the body to be otherwise valid.
SIBLINGS: dict[str, dict[str, Any]] = {
    "startTask": {"commandLine": "/bin/true"},
    "containerSettings": {"imageName": "ubuntu:22.04"},
    "containerConfiguration": {"type": "dockerCompatible"},
    "registry": {"registryServer": "registry.example.com"},
    "containerRegistries": {"registryServer": "registry.example.com"},
    "jobPreparationTask": {"commandLine": "/bin/true"},
    "jobReleaseTask": {"commandLine": "/bin/true"},
    "identityReference": {"httpUrl": "https://example.com/x", "filePath": "x"},
    "enableAutoScale": {"autoScaleFormula": "$TargetDedicatedNodes = 1;"},
    "outputFiles": {"filePattern": "*.txt", "uploadOptions": {"uploadCondition": "taskcompletion"}},
    "container": {"containerUrl": "https://account.blob.core.windows.net/out"},
    "jobManagerTask": {"id": "manager", "commandLine": "/bin/true"},
    "autoPoolSpecification": {"poolLifetimeOption": "job"},
    "pool": {"vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0, "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"},
        "nodeAgentSKUId": "batch.node.ubuntu 22.04"}},
}


def _pool_body(pool_id: str) -> dict:
    return {"id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0,
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"},
                "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}


def _asking(body: dict, rule: Refused) -> tuple[dict, str]:
    """``body`` with ``rule``'s property set, and the property's path as the error names it."""
    body = copy.deepcopy(body)
    parts = rule.path.split("/")
    leaf = parts[-1].removesuffix("[]")
    where, path = body, []
    for part in parts[:-1]:
        name = part.removesuffix("[]")
        if part.endswith("[]"):
            where.setdefault(name, [copy.deepcopy(SIBLINGS.get(name, {}))])
            where, path = where[name][0], path + [name, "0"]
        else:
            where.setdefault(name, copy.deepcopy(SIBLINGS.get(name, {})))
            where, path = where[name], path + [name]
    where.update(copy.deepcopy(SIBLINGS.get(leaf, {})))
    where[leaf] = SAMPLES[leaf]
    path.append(leaf)
    if leaf == "enableAutoScale":
        where.pop("targetDedicatedNodes", None)
    return body, "/".join(path)


def _ids(rules: tuple[Refused, ...]) -> list[str]:
    return [rule.path for rule in rules]


def _refused(response: httpx.Response, path: str) -> None:
    error = expect_rest_failure(response, 400, "UnsupportedProperty")
    values = error_values(error)
    assert values["PropertyName"] == path, error
    assert "not supported" in values["Reason"], error


@pytest.mark.parametrize("rule", REFUSED_POOL, ids=_ids(REFUSED_POOL))
def test_pool_add_refuses(rest: httpx.Client, rule: Refused) -> None:
    body, path = _asking(_pool_body(uid("refused")), rule)
    _refused(rest.post("/pools", params=Q, json=body), path)
    assert rest.head(f"/pools/{body['id']}", params=Q).status_code == 404


PATCHABLE = tuple(r for r in REFUSED_POOL if r.path.split("/")[0] in PoolPatchParameter.__struct_fields__)


@pytest.mark.parametrize("rule", PATCHABLE, ids=_ids(PATCHABLE))
def test_pool_patch_refuses_and_changes_nothing(rest: httpx.Client, rule: Refused) -> None:
    pool_id = uid("patch")
    assert rest.post("/pools", params=Q, json=_pool_body(pool_id)).status_code == 201
    before = rest.get(f"/pools/{pool_id}", params=Q).json()
    body, path = _asking({"virtualMachineConfiguration": _pool_body("x")["virtualMachineConfiguration"]}
                         if rule.path.startswith("virtualMachine") else {}, rule)
    _refused(rest.patch(f"/pools/{pool_id}", params=Q, json=body), path)
    assert rest.get(f"/pools/{pool_id}", params=Q).json()["eTag"] == before["eTag"]


@pytest.mark.parametrize("rule", REFUSED_POOL_PROPERTIES, ids=_ids(REFUSED_POOL_PROPERTIES))
def test_pool_update_properties_refuses(rest: httpx.Client, rule: Refused) -> None:
    pool_id = uid("props")
    assert rest.post("/pools", params=Q, json=_pool_body(pool_id)).status_code == 201
    base = {"certificateReferences": [], "applicationPackageReferences": [], "metadata": []}
    body, path = _asking(base, rule)
    _refused(rest.post(f"/pools/{pool_id}/updateproperties", params=Q, json=body), path)


@pytest.mark.parametrize("rule", REFUSED_JOB, ids=_ids(REFUSED_JOB))
def test_job_add_refuses(rest: httpx.Client, rule: Refused) -> None:
    base = {"id": uid("job"), "poolInfo": {"poolId": "somewhere"}}
    if rule.path.startswith("jobReleaseTask"):
        base["jobPreparationTask"] = {"commandLine": "/bin/true"}
    body, path = _asking(base, rule)
    if rule.path.startswith("poolInfo"):
        body["poolInfo"].pop("poolId")
    _refused(rest.post("/jobs", params=Q, json=body), path)
    assert rest.get(f"/jobs/{body['id']}", params=Q).status_code == 404


@pytest.mark.parametrize("rule", REFUSED_JOB_CHANGE, ids=_ids(REFUSED_JOB_CHANGE))
def test_job_patch_and_update_refuse(rest: httpx.Client, rule: Refused) -> None:
    job_id = uid("jobchange")
    assert rest.post("/jobs", params=Q, json={"id": job_id, "poolInfo": {"poolId": "p"}}).status_code == 201
    body, path = _asking({"poolInfo": {}}, rule)
    _refused(rest.patch(f"/jobs/{job_id}", params=Q, json=body), path)
    _refused(rest.put(f"/jobs/{job_id}", params=Q, json=body), path)
    assert rest.get(f"/jobs/{job_id}", params=Q).json()["poolInfo"] == {"poolId": "p"}


@pytest.mark.parametrize("rule", REFUSED_TASK, ids=_ids(REFUSED_TASK))
def test_task_add_and_collection_refuse(rest: httpx.Client, rule: Refused) -> None:
    job_id = uid("tasks")
    assert rest.post("/jobs", params=Q, json={"id": job_id, "poolInfo": {"poolId": "p"}}).status_code == 201
    body, path = _asking({"id": "refused", "commandLine": "/bin/true"}, rule)
    _refused(rest.post(f"/jobs/{job_id}/tasks", params=Q, json=body), path)
    assert rest.get(f"/jobs/{job_id}/tasks/refused", params=Q).status_code == 404
    # in a collection the refused task gets its own client error (never a server error, which SDKs
    # retry for ever) and the others are added
    fine = {"id": "fine", "commandLine": "/bin/true"}
    answer = rest.post(f"/jobs/{job_id}/addtaskcollection", params=Q, json={"value": [body, fine]}).json()
    results = {r["taskId"]: r for r in answer["value"]}
    assert results["refused"]["status"] == "clienterror"
    assert results["refused"]["error"]["code"] == "UnsupportedProperty"
    assert results["fine"]["status"] == "success"
    counts = rest.get(f"/jobs/{job_id}/taskcounts", params=Q).json()["taskCounts"]
    assert counts["active"] == 1


def test_task_application_packages_are_refused(rest: httpx.Client) -> None:
    job_id = uid("apps")
    assert rest.post("/jobs", params=Q, json={"id": job_id, "poolInfo": {"poolId": "p"}}).status_code == 201
    body = {"id": "t", "commandLine": "/bin/true", "applicationPackageReferences": [{"applicationId": "blender"}]}
    expect_rest_failure(rest.post(f"/jobs/{job_id}/tasks", params=Q, json=body), 409,
                        "InvalidApplicationPackageReferences")


def test_output_files_with_a_managed_identity_through_the_sdk(batch: BatchClient) -> None:
    job_id = uid("out")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="p")))
    output = m.OutputFile(file_pattern="*.txt", destination=m.OutputFileDestination(
        container=m.OutputFileBlobContainerDestination(
            container_url="https://account.blob.core.windows.net/out",
            identity_reference=m.BatchNodeIdentityReference(resource_id="/subscriptions/s/x"))),
        upload_options=m.OutputFileUploadConfiguration(upload_condition="taskcompletion"))
    error = expect_failure(lambda: batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="t", command_line="/bin/true", output_files=[output])), 400, "UnsupportedProperty")
    assert error_values(error)["PropertyName"] == "outputFiles/0/destination/container/identityReference"
    result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id="a", command_line="/bin/true", output_files=[output])]))
    assert [(r.status, r.error.code) for r in result.result_values] == [("clienterror", "UnsupportedProperty")]
    assert batch.get_job_task_counts(job_id).task_counts.active == 0


def test_every_rule_has_a_sample() -> None:
    for rule in REFUSED_POOL + REFUSED_JOB + REFUSED_TASK + REFUSED_RESIZE:
        assert rule.path.split("/")[-1].removesuffix("[]") in SAMPLES, rule.path
