"""Pools end to end through azure-batch 15.1 (and raw REST where a client sends something the SDK cannot).

Compute nodes do not exist yet: a pool settles at once to allocationState steady
with no nodes and, when its target was above zero, a resizeError AllocationFailed.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError

from tests.sdk.conftest import API_VERSION, uid
from tests.sdk.conftest import error_values as _values
from tests.sdk.conftest import expect_failure as _fails, expect_rest_failure as _rest_fails

VM_SIZE = "STANDARD_D2S_V3"
Q = {"api-version": API_VERSION}


# -- helpers --------------------------------------------------------------------------------


def _vm_config() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
        ),
        node_agent_sku_id="batch.node.ubuntu 22.04",
    )


def _new_pool(pool_id: str, **kwargs: Any) -> m.BatchPoolCreateOptions:
    kwargs.setdefault("target_dedicated_nodes", 0)
    return m.BatchPoolCreateOptions(id=pool_id, vm_size=VM_SIZE, virtual_machine_configuration=_vm_config(), **kwargs)


def _wire_pool(pool_id: str, **extra: Any) -> dict:
    body = {
        "id": pool_id,
        "vmSize": VM_SIZE,
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy",
                               "sku": "22_04-lts", "version": "latest"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        },
        "targetDedicatedNodes": 0,
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}










def _exists(batch: BatchClient, pool_id: str) -> bool:
    """pool_exists, tolerating azure-batch 15.1's BatchExceptionPolicy, which raises on the 404 of a HEAD
    before pool_exists can turn it into False (the server answers 404 as the spec says)."""
    try:
        return batch.pool_exists(pool_id)
    except ResourceNotFoundError as exc:
        assert exc.status_code == 404
        return False


def _create(batch: BatchClient, prefix: str = "pool", **kwargs: Any) -> str:
    pool_id = uid(prefix)
    batch.create_pool(_new_pool(pool_id, **kwargs))
    return pool_id


# -- add and get ----------------------------------------------------------------------------


def test_add_full_pool_get_echoes_every_field(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = uid("full")
    start_task = m.BatchStartTask(
        command_line="/bin/sh -c 'echo start'",
        resource_files=[m.ResourceFile(http_url="https://example.com/tool.sh", file_path="tool.sh", file_mode="755")],
        environment_settings=[m.EnvironmentSetting(name="MODE", value="fast")],
        user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin")),
        max_task_retry_count=2,
        wait_for_success=False,
    )
    vm = _vm_config()
    vm.data_disks = [m.DataDisk(logical_unit_number=0, disk_size_gb=64, caching="readwrite")]
    vm.node_placement_configuration = m.BatchNodePlacementConfiguration(policy="regional")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id,
        display_name="Full pool",
        vm_size=VM_SIZE,
        virtual_machine_configuration=vm,
        resize_timeout=datetime.timedelta(minutes=10),
        target_dedicated_nodes=2,
        target_low_priority_nodes=0,
        enable_inter_node_communication=True,
        start_task=start_task,
        task_slots_per_node=4,
        task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type=m.BatchNodeFillType.PACK,
                                                           job_default_order="creationtime"),
        user_accounts=[m.UserAccount(name="render", password="s3cret!pw")],
        metadata=[m.BatchMetadataItem(name="team", value="render"), m.BatchMetadataItem(name="cost", value="42")],
    ))

    pool = batch.get_pool(pool_id)
    assert pool.id == pool_id
    assert pool.display_name == "Full pool"
    assert pool.vm_size == VM_SIZE
    assert pool.url.endswith(f"/pools/{pool_id}")
    assert pool.etag and pool.last_modified and pool.creation_time
    image = pool.virtual_machine_configuration.image_reference
    assert (image.publisher, image.offer, image.sku, image.version) == (
        "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts", "latest")
    assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 22.04"
    disk = pool.virtual_machine_configuration.data_disks[0]
    assert (disk.logical_unit_number, disk.disk_size_gb, disk.caching) == (0, 64, "readwrite")
    assert pool.virtual_machine_configuration.node_placement_configuration.policy == "regional"
    assert pool.resize_timeout == datetime.timedelta(minutes=10)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (2, 0)
    assert pool.enable_auto_scale is False
    assert pool.enable_inter_node_communication is True
    assert pool.task_slots_per_node == 4
    assert pool.task_scheduling_policy.node_fill_type == "pack"
    assert pool.task_scheduling_policy.job_default_order == "creationtime"
    assert [(u.name, u.password, u.elevation_level) for u in pool.user_accounts] == [("render", "", "nonadmin")]
    assert [(i.name, i.value) for i in pool.metadata] == [("team", "render"), ("cost", "42")]
    st = pool.start_task
    assert st.command_line == "/bin/sh -c 'echo start'"
    assert [(f.http_url, f.file_path, f.file_mode) for f in st.resource_files] == [
        ("https://example.com/tool.sh", "tool.sh", "755")]
    assert [(e.name, e.value) for e in st.environment_settings] == [("MODE", "fast")]
    assert (st.user_identity.auto_user.scope, st.user_identity.auto_user.elevation_level) == ("pool", "admin")
    assert (st.max_task_retry_count, st.wait_for_success) == (2, False)
    # Allocation settled at once: no node provider yet, so no nodes and a resize error.
    assert pool.state == m.BatchPoolState.ACTIVE
    assert pool.allocation_state == m.AllocationState.STEADY
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (0, 0)
    assert [e.code for e in pool.resize_errors] == ["AllocationFailed"]
    assert pool.resize_errors[0].message
    assert pool.state_transition_time and pool.allocation_state_transition_time

    # The wire form, exactly.
    wire = rest.get(f"/pools/{pool_id}", params=Q).json()
    assert wire["resizeTimeout"] in ("PT10M", "PT10M00S"), wire["resizeTimeout"]  # the SDK sends PT10M00S
    assert wire["taskSchedulingPolicy"] == {"nodeFillType": "pack"}  # jobDefaultOrder is 2025-06-01's
    assert wire["userAccounts"] == [{"name": "render", "password": "", "elevationLevel": "nonadmin"}]  # never the secret
    disk = wire["virtualMachineConfiguration"]["dataDisks"][0]
    assert (disk["caching"], disk["storageAccountType"]) == ("readwrite", "standard_lrs")  # the documented default
    assert wire["state"] == "active" and wire["allocationState"] == "steady"
    assert wire["metadata"] == [{"name": "team", "value": "render"}, {"name": "cost", "value": "42"}]
    assert wire["odata.metadata"].endswith("/$metadata#pools/@Element")


def test_add_minimal_pool_gets_defaults(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "min")
    pool = batch.get_pool(pool_id)
    assert pool.resize_timeout == datetime.timedelta(minutes=15)
    assert pool.enable_auto_scale is False
    assert pool.enable_inter_node_communication is False
    assert pool.task_slots_per_node == 1
    assert pool.task_scheduling_policy.node_fill_type == "spread"
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)
    assert pool.allocation_state == m.AllocationState.STEADY
    assert pool.current_dedicated_nodes == 0
    assert not pool.resize_errors, "a target of 0 nodes was reached: no resize error expected"
    assert pool.start_task is None and pool.metadata is None
    wire = rest.get(f"/pools/{pool_id}", params=Q).json()
    assert wire["resizeTimeout"] == "PT15M"
    assert wire["taskSchedulingPolicy"] == {"nodeFillType": "spread"}


def test_add_returns_created_headers(rest: httpx.Client) -> None:
    pool_id = uid("hdr")
    response = rest.post("/pools", params=Q, json=_wire_pool(pool_id))
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/pools/{pool_id}")
    assert response.headers["DataServiceId"].endswith(f"/pools/{pool_id}")
    assert response.headers["ETag"] and response.headers["Last-Modified"] and response.headers["request-id"]
    assert rest.get(f"/pools/{pool_id}", params=Q).headers["ETag"] == response.headers["ETag"]


def test_add_existing_pool_409_also_differing_by_case(batch: BatchClient) -> None:
    pool_id = _create(batch, "dup")
    error = _fails(lambda: batch.create_pool(_new_pool(pool_id)), 409, "PoolExists")
    assert _values(error).get("PoolId") == pool_id
    _fails(lambda: batch.create_pool(_new_pool(pool_id.upper())), 409, "PoolExists")


def test_target_as_json_string_is_accepted(rest: httpx.Client, batch: BatchClient) -> None:
    """The az CLI sends targetDedicatedNodes as a JSON string."""
    pool_id = uid("str")
    response = rest.post("/pools", params=Q, json=_wire_pool(pool_id, targetDedicatedNodes="2"))
    assert response.status_code == 201, response.text
    pool = batch.get_pool(pool_id)
    assert pool.target_dedicated_nodes == 2
    assert rest.get(f"/pools/{pool_id}", params=Q).json()["targetDedicatedNodes"] == 2


@pytest.mark.parametrize(
    ("change", "code", "prop"),
    [
        ({"id": "bad id!"}, "InvalidPropertyValue", "id"),
        ({"id": "x" * 65}, "InvalidPropertyValue", "id"),
        ({"vmSize": None}, "MissingRequiredProperty", "vmSize"),
        ({"virtualMachineConfiguration": None}, "MissingRequiredProperty", "virtualMachineConfiguration"),
        ({"resizeTimeout": "PT1M"}, "InvalidPropertyValue", "resizeTimeout"),
        ({"resizeTimeout": "ten minutes"}, "InvalidPropertyValue", "resizeTimeout"),
        ({"taskSlotsPerNode": 0}, "InvalidPropertyValue", "taskSlotsPerNode"),
        ({"taskSlotsPerNode": 257}, "InvalidPropertyValue", "taskSlotsPerNode"),
        ({"targetDedicatedNodes": -1}, "InvalidPropertyValue", "targetDedicatedNodes"),
        ({"targetLowPriorityNodes": -2}, "InvalidPropertyValue", "targetLowPriorityNodes"),
        ({"taskSchedulingPolicy": {"nodeFillType": "diagonal"}}, "InvalidPropertyValue", None),
        ({"targetDedicatedNodes": "two"}, "InvalidPropertyValue", "targetDedicatedNodes"),
        ({"enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes = 1;"}, "InvalidPropertyValue",
         "targetDedicatedNodes"),
        ({"startTask": {"commandLine": "/bin/true", "maxTaskRetryCount": -2}}, "InvalidPropertyValue",
         "startTask/maxTaskRetryCount"),
        ({"metadata": [{"name": "", "value": "x"}]}, "EmptyMetadataKey", None),
    ],
    ids=["bad-id", "long-id", "no-vmSize", "no-vmConfig", "resizeTimeout-PT1M", "resizeTimeout-garbage",
         "slots-0", "slots-257", "negative-dedicated", "negative-lowpri", "bad-fill-type", "target-not-a-number",
         "targets-with-autoscale", "starttask-retries", "empty-metadata-name"],
)
def test_add_invalid_pool_400(rest: httpx.Client, change: dict, code: str, prop: str | None) -> None:
    body = _wire_pool(uid("bad"))
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    error = _rest_fails(rest.post("/pools", params=Q, json=body), 400, code)
    if prop is not None:
        assert _values(error).get("PropertyName") == prop, error
    if "id" in change:
        assert rest.head(f"/pools/{body['id']}", params=Q).status_code in (400, 404)


def test_add_pool_without_targets_has_target_zero(rest: httpx.Client) -> None:
    """Azure accepts a pool with neither target nor autoscale: its target is 0."""
    body = _wire_pool(uid("notarget"))
    del body["targetDedicatedNodes"]
    assert rest.post("/pools", params=Q, json=body).status_code == 201
    pool = rest.get(f"/pools/{body['id']}", params=Q).json()
    assert (pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"]) == (0, 0)


def test_add_invalid_pool_400_through_sdk(batch: BatchClient) -> None:
    _fails(lambda: batch.create_pool(_new_pool(uid("bad"), task_slots_per_node=0)), 400, "InvalidPropertyValue")
    _fails(lambda: batch.create_pool(_new_pool(uid("bad"), resize_timeout=datetime.timedelta(minutes=1))),
           400, "InvalidPropertyValue")


def test_add_with_unknown_application_package_409(rest: httpx.Client, batch: BatchClient) -> None:
    """No application can be uploaded to this server, so every package reference is invalid."""
    pool_id = uid("app")
    body = _wire_pool(pool_id, applicationPackageReferences=[{"applicationId": "blender", "version": "3.6"}])
    error = _rest_fails(rest.post("/pools", params=Q, json=body), 409, "InvalidApplicationPackageReferences")
    assert "blender" in _values(error).values()
    assert _exists(batch, pool_id) is False
    pool_id = _create(batch, "app")
    patch = m.BatchPoolUpdateOptions(
        application_package_references=[m.BatchApplicationPackageReference(application_id="blender")])
    _fails(lambda: batch.update_pool(pool_id, patch), 409, "InvalidApplicationPackageReferences")
    _fails(lambda: batch.replace_pool_properties(pool_id, m.BatchPoolReplaceOptions(
        application_package_references=[m.BatchApplicationPackageReference(application_id="blender")], metadata=[],
    )), 409, "InvalidApplicationPackageReferences")
    assert not batch.get_pool(pool_id).application_package_references


def test_add_autoscale_pool_evaluates_its_formula_at_once(batch: BatchClient) -> None:
    pool_id = uid("auto")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size=VM_SIZE, virtual_machine_configuration=_vm_config(),
        enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = 2;\n$TargetLowPriorityNodes = 1;"))
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is True and pool.auto_scale_evaluation_interval == datetime.timedelta(minutes=15)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (2, 1)
    assert pool.auto_scale_run.results == ("$TargetDedicatedNodes=2;$TargetLowPriorityNodes=1;"
                                           "$NodeDeallocationOption=requeue")
    assert pool.auto_scale_run.error is None and pool.auto_scale_run.timestamp is not None
    bad = m.BatchPoolCreateOptions(id=uid("auto"), vm_size=VM_SIZE, virtual_machine_configuration=_vm_config(),
                                   enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = max(1,;")
    error = _fails(lambda: batch.create_pool(bad), 400, "AutoScalingFormulaSyntaxError")
    assert _values(error)["Line"] == "1" and _values(error)["Column"] == "31"
    assert _exists(batch, bad.id) is False
    short = m.BatchPoolCreateOptions(id=uid("auto"), vm_size=VM_SIZE, virtual_machine_configuration=_vm_config(),
                                     enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes = 1;",
                                     auto_scale_evaluation_interval=datetime.timedelta(seconds=1))
    error = _fails(lambda: batch.create_pool(short), 400, "InvalidPropertyValue")
    assert _values(error)["PropertyName"] == "autoScaleEvaluationInterval"


# -- exists, get, list ----------------------------------------------------------------------


def test_exists(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "ex")
    assert batch.pool_exists(pool_id) is True
    assert batch.pool_exists(pool_id.upper()) is True, "pool ids are case-insensitive"
    missing = uid("nope")
    # azure-batch 15.1 raises ResourceNotFoundError here instead of returning False (its exception
    # policy runs before pool_exists looks at the status); the wire answer is the documented 404.
    with pytest.raises(ResourceNotFoundError) as info:
        batch.pool_exists(missing)
    assert info.value.status_code == 404
    assert _exists(batch, missing) is False
    head = rest.head(f"/pools/{pool_id}", params=Q)
    assert head.status_code == 200 and not head.content
    assert head.headers["ETag"] == rest.get(f"/pools/{pool_id}", params=Q).headers["ETag"]
    assert head.headers["Last-Modified"]


def test_get_with_select_and_expand_stats(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "sel", metadata=[m.BatchMetadataItem(name="a", value="1")])
    pool = batch.get_pool(pool_id, select=["id", "state", "metadata"])
    assert pool.id == pool_id and pool.state == m.BatchPoolState.ACTIVE
    assert [(i.name, i.value) for i in pool.metadata] == [("a", "1")]
    assert pool.vm_size is None and pool.allocation_state is None and pool.task_slots_per_node is None
    wire = rest.get(f"/pools/{pool_id}", params={**Q, "$select": "id,vmSize"}).json()
    assert set(wire) == {"odata.metadata", "id", "vmSize"}

    assert batch.get_pool(pool_id).pool_statistics is None
    stats = batch.get_pool(pool_id, expand=["stats"]).pool_statistics
    assert stats is not None and stats.url.endswith(f"/pools/{pool_id}/stats")
    assert stats.start_time and stats.last_update_time
    _rest_fails(rest.get(f"/pools/{pool_id}", params={**Q, "$expand": "nodes"}), 400, "InvalidQueryParameterValue")


def test_list_with_filters(batch: BatchClient) -> None:
    prefix = uid("lst")
    ids = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    for pool_id in ids[:2]:
        batch.create_pool(_new_pool(pool_id))
    batch.create_pool(m.BatchPoolCreateOptions(id=ids[2], vm_size="STANDARD_A1_V2",
                                               virtual_machine_configuration=_vm_config(), target_dedicated_nodes=0))
    mine = f"startswith(id,'{prefix}')"

    def listed(flt: str) -> list[str]:
        return [p.id for p in batch.list_pools(filter=flt)]

    assert listed(mine) == ids
    assert listed(f"state eq 'active' and {mine}") == ids
    assert listed(f"allocationState eq 'steady' and {mine}") == ids
    assert listed(f"allocationState eq 'resizing' and {mine}") == []
    assert listed(f"vmSize eq '{VM_SIZE}' and {mine}") == ids[:2]
    assert listed(f"vmSize eq 'STANDARD_A1_V2' and {mine}") == ids[2:]
    assert listed(f"id eq '{ids[1]}'") == [ids[1]]
    assert listed(f"state eq 'deleting' and {mine}") == []
    assert listed(f"enableAutoScale eq false and {mine}") == ids
    assert listed(f"enableInterNodeCommunication eq true and {mine}") == []
    assert listed(f"(vmSize eq 'STANDARD_A1_V2' or id eq '{ids[0]}') and {mine}") == [ids[0], ids[2]]
    created = batch.get_pool(ids[0]).creation_time - datetime.timedelta(minutes=1)
    assert listed(f"creationTime ge DateTime'{created.strftime('%Y-%m-%dT%H:%M:%SZ')}' and {mine}") == ids
    # Values compare case-insensitively (property names do not).
    assert listed(f"state eq 'Active' and vmSize eq '{VM_SIZE.lower()}' and {mine}") == ids[:2]
    every = [p.id for p in batch.list_pools()]
    assert set(ids) <= set(every) and every == sorted(every, key=str.lower)


def test_list_paging_with_maxresults(batch: BatchClient, rest: httpx.Client) -> None:
    prefix = uid("pg")
    ids = [f"{prefix}-{i}" for i in range(5)]
    for pool_id in ids:
        batch.create_pool(_new_pool(pool_id))
    flt = f"startswith(id,'{prefix}')"
    assert [p.id for p in batch.list_pools(filter=flt, max_results=2)] == ids

    first = rest.get("/pools", params={**Q, "$filter": flt, "maxresults": 2}).json()
    assert [p["id"] for p in first["value"]] == ids[:2]
    link = first["odata.nextLink"]
    assert link.startswith("http")
    second = rest.get(link).json()
    assert [p["id"] for p in second["value"]] == ids[2:4]
    third = rest.get(second["odata.nextLink"]).json()
    assert [p["id"] for p in third["value"]] == ids[4:]
    assert "odata.nextLink" not in third
    _rest_fails(rest.get("/pools", params={**Q, "maxresults": 0}), 400, "OutOfRangeQueryParameterValue")
    _rest_fails(rest.get("/pools", params={**Q, "maxresults": 1001}), 400, "OutOfRangeQueryParameterValue")


def test_list_with_select_and_expand(batch: BatchClient) -> None:
    pool_id = _create(batch, "lsel")
    pools = list(batch.list_pools(filter=f"id eq '{pool_id}'", select=["id", "vmSize"], expand=["stats"]))
    assert len(pools) == 1
    assert (pools[0].id, pools[0].vm_size, pools[0].state) == (pool_id, VM_SIZE, None)


@pytest.mark.parametrize("flt", ["state eq", "nosuchproperty eq 'x'", "state eq 'sleeping'", "id zz 'a'",
                                 "State eq 'active'", "startswith(vmSize,'x')"])
def test_list_bad_filter_400(batch: BatchClient, flt: str) -> None:
    error = _fails(lambda: list(batch.list_pools(filter=flt)), 400, None)
    assert error["code"] in ("InvalidQueryParameterValue", "InvalidInput"), error


# -- patch and update properties ------------------------------------------------------------


def test_patch_replaces_only_given_properties(batch: BatchClient) -> None:
    pool_id = _create(
        batch, "patch",
        start_task=m.BatchStartTask(command_line="/bin/true"),
        metadata=[m.BatchMetadataItem(name="k", value="v")],
    )
    before = batch.get_pool(pool_id)

    batch.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="k2", value="v2")]))
    pool = batch.get_pool(pool_id)
    assert [(i.name, i.value) for i in pool.metadata] == [("k2", "v2")]
    assert pool.start_task.command_line == "/bin/true", "startTask must stay when Patch omits it"
    assert pool.etag != before.etag and pool.last_modified >= before.last_modified

    batch.update_pool(pool_id, m.BatchPoolUpdateOptions(start_task=m.BatchStartTask(command_line="/bin/echo hi")))
    pool = batch.get_pool(pool_id)
    assert pool.start_task.command_line == "/bin/echo hi"
    assert (pool.start_task.max_task_retry_count, pool.start_task.wait_for_success) == (0, True), \
        "a patched startTask gets the same defaults as one given at Add"
    assert [(i.name, i.value) for i in pool.metadata] == [("k2", "v2")], "metadata must stay when Patch omits it"

    batch.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[]))
    assert not batch.get_pool(pool_id).metadata
    assert batch.get_pool(pool_id).state == m.BatchPoolState.ACTIVE


def test_patch_returns_headers(rest: httpx.Client, batch: BatchClient) -> None:
    pool_id = _create(batch, "phdr")
    response = rest.patch(f"/pools/{pool_id}", params=Q, json={"metadata": [{"name": "a", "value": "b"}]})
    assert response.status_code == 200, response.text
    assert response.headers["DataServiceId"].endswith(f"/pools/{pool_id}")
    assert response.headers["ETag"] == rest.get(f"/pools/{pool_id}", params=Q).headers["ETag"]


def test_patch_invalid_400(batch: BatchClient) -> None:
    pool_id = _create(batch, "pbad")
    _fails(lambda: batch.update_pool(pool_id, m.BatchPoolUpdateOptions(task_slots_per_node=0)),
           400, "InvalidPropertyValue")
    _fails(lambda: batch.update_pool(pool_id, m.BatchPoolUpdateOptions(
        metadata=[m.BatchMetadataItem(name="", value="x")])), 400, "EmptyMetadataKey")


def test_update_properties_replaces_everything(batch: BatchClient) -> None:
    pool_id = _create(
        batch, "upd",
        start_task=m.BatchStartTask(command_line="/bin/true"),
        metadata=[m.BatchMetadataItem(name="old", value="1")],
    )
    batch.replace_pool_properties(pool_id, m.BatchPoolReplaceOptions(
        application_package_references=[], metadata=[m.BatchMetadataItem(name="new", value="2")],
    ))
    pool = batch.get_pool(pool_id)
    assert [(i.name, i.value) for i in pool.metadata] == [("new", "2")]
    assert pool.start_task is None, "UpdateProperties without startTask removes it"

    batch.replace_pool_properties(pool_id, m.BatchPoolReplaceOptions(
        start_task=m.BatchStartTask(command_line="/bin/echo again"), application_package_references=[], metadata=[],
    ))
    pool = batch.get_pool(pool_id)
    assert pool.start_task.command_line == "/bin/echo again"
    assert (pool.start_task.max_task_retry_count, pool.start_task.wait_for_success) == (0, True), \
        "a replaced startTask gets the same defaults as one given at Add"
    assert not pool.metadata


def test_update_properties_with_certificate_references_over_rest(rest: httpx.Client, batch: BatchClient) -> None:
    pool_id = _create(batch, "updr", start_task=m.BatchStartTask(command_line="/bin/true"))
    body = {"certificateReferences": [], "applicationPackageReferences": [],
            "metadata": [{"name": "x", "value": "y"}]}
    response = rest.post(f"/pools/{pool_id}/updateproperties", params=Q, json=body)
    assert response.status_code == 204, response.text
    assert response.headers["DataServiceId"].endswith(f"/pools/{pool_id}")
    wire = rest.get(f"/pools/{pool_id}", params=Q).json()
    assert wire["metadata"] == [{"name": "x", "value": "y"}]
    assert "startTask" not in wire


@pytest.mark.parametrize("missing", ["metadata", "certificateReferences", "applicationPackageReferences"])
def test_update_properties_missing_required_400(rest: httpx.Client, batch: BatchClient, missing: str) -> None:
    pool_id = _create(batch, "updm")
    body = {"certificateReferences": [], "applicationPackageReferences": [], "metadata": []}
    del body[missing]
    error = _rest_fails(rest.post(f"/pools/{pool_id}/updateproperties", params=Q, json=body),
                        400, "MissingRequiredProperty")
    assert _values(error)["PropertyName"] == missing


# -- resize, stop resize, remove nodes, autoscale -------------------------------------------


def test_resize_changes_targets_and_settles(batch: BatchClient) -> None:
    pool_id = _create(batch, "rsz")
    poller = batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(
        target_dedicated_nodes=3, target_low_priority_nodes=0, resize_timeout=datetime.timedelta(minutes=20),
    ), polling_interval=0)
    poller.result(timeout=30)
    assert poller.done()
    pool = batch.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (3, 0)
    assert pool.resize_timeout == datetime.timedelta(minutes=20)
    assert pool.allocation_state == m.AllocationState.STEADY
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (0, 0)
    assert [e.code for e in pool.resize_errors] == ["AllocationFailed"]

    # Back to zero: the target is reached, the old resize error goes away.
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0, target_low_priority_nodes=0),
                            polling_interval=0).result(timeout=30)
    pool = batch.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.target_low_priority_nodes) == (0, 0)
    assert pool.allocation_state == m.AllocationState.STEADY
    assert not pool.resize_errors


def test_resize_wire_and_invalid(rest: httpx.Client, batch: BatchClient) -> None:
    pool_id = _create(batch, "rszw")
    response = rest.post(f"/pools/{pool_id}/resize", params=Q, json={"targetDedicatedNodes": 1})
    assert response.status_code == 202, response.text
    assert response.headers["DataServiceId"].endswith(f"/pools/{pool_id}")
    assert rest.get(f"/pools/{pool_id}", params=Q).json()["targetDedicatedNodes"] == 1
    _rest_fails(rest.post(f"/pools/{pool_id}/resize", params=Q, json={"targetDedicatedNodes": -1}),
                400, "InvalidPropertyValue")
    _rest_fails(rest.post(f"/pools/{pool_id}/resize", params=Q,
                          json={"targetDedicatedNodes": 1, "resizeTimeout": "PT1M"}), 400, "InvalidPropertyValue")


def test_stop_resize_on_steady_pool_409(batch: BatchClient) -> None:
    pool_id = _create(batch, "stop")
    _fails(lambda: batch.begin_stop_pool_resize(pool_id, polling_interval=0), 409, "OperationInvalidForCurrentState")
    assert batch.get_pool(pool_id).allocation_state == m.AllocationState.STEADY


def test_remove_missing_node_404(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "rm")
    error = _fails(lambda: batch.begin_remove_nodes(pool_id, m.BatchNodeRemoveOptions(node_ids=["tvmps_nope"]),
                                                    polling_interval=0), 404, "NodeNotFound")
    assert "tvmps_nope" in _values(error).values()
    _rest_fails(rest.post(f"/pools/{pool_id}/removenodes", params=Q, json={"nodeList": []}),
                400, "InvalidPropertyValue")
    _rest_fails(rest.post(f"/pools/{pool_id}/removenodes", params=Q, json={}), 400, "MissingRequiredProperty")


def test_enable_evaluate_and_disable_autoscale(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "as")
    formula = "$TargetDedicatedNodes = 1;"
    _fails(lambda: batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula=formula)), 409, "OperationInvalidForCurrentState")
    _fails(lambda: batch.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions()), 400,
           "MissingRequiredProperty")
    batch.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula=formula, auto_scale_evaluation_interval=datetime.timedelta(minutes=5)))
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is True and pool.auto_scale_formula == formula
    assert pool.target_dedicated_nodes == 1 and pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=1;")
    _fails(lambda: batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3),
                                           polling_interval=0), 409, "OperationInvalidForCurrentState")
    run = batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="x = $CurrentDedicatedNodes + 4;\n$TargetDedicatedNodes = x;"))
    assert run.results == "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;x=4"
    assert batch.get_pool(pool_id).target_dedicated_nodes == 1     # evaluating applies nothing
    run = batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 10, 90));"))
    assert run.error.code == "InsufficientSampleData" and run.error.error_values[0].name == "Message"
    error = _fails(lambda: batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
        auto_scale_formula="$TargetDedicatedNodes = (1;")), 400, "AutoScalingFormulaSyntaxError")
    assert "Line 1" in _values(error)["Message"]
    batch.disable_pool_auto_scale(pool_id)
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is False and pool.auto_scale_formula is None and pool.target_dedicated_nodes == 1


# -- delete ---------------------------------------------------------------------------------


def test_delete_pool(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "del")
    poller = batch.begin_delete_pool(pool_id, polling_interval=0)
    poller.result(timeout=30)
    assert poller.done()
    assert _exists(batch, pool_id) is False
    _fails(lambda: batch.get_pool(pool_id), 404, "PoolNotFound")
    _fails(lambda: batch.begin_delete_pool(pool_id, polling_interval=0), 404, "PoolNotFound")
    assert pool_id not in [p.id for p in batch.list_pools(filter=f"id eq '{pool_id}'")]
    # The id can be used again.
    batch.create_pool(_new_pool(pool_id))
    assert _exists(batch, pool_id) is True


def test_delete_over_rest_202_then_404(rest: httpx.Client, batch: BatchClient) -> None:
    pool_id = _create(batch, "delr")
    response = rest.delete(f"/pools/{pool_id}", params=Q)
    assert response.status_code == 202, response.text
    _rest_fails(rest.delete(f"/pools/{pool_id}", params=Q), 404, "PoolNotFound")


# -- conditional requests -------------------------------------------------------------------


def test_conditional_get(batch: BatchClient, rest: httpx.Client) -> None:
    pool_id = _create(batch, "cg")
    pool = batch.get_pool(pool_id)
    _fails(lambda: batch.get_pool(pool_id, etag=pool.etag, match_condition=MatchConditions.IfModified), 304, None)
    assert batch.get_pool(pool_id, etag=pool.etag, match_condition=MatchConditions.IfNotModified).id == pool_id
    assert batch.get_pool(pool_id, etag='"0x0"', match_condition=MatchConditions.IfModified).id == pool_id
    response = rest.get(f"/pools/{pool_id}", params=Q, headers={"If-None-Match": pool.etag})
    assert response.status_code == 304 and not response.content
    _fails(lambda: batch.get_pool(pool_id, if_modified_since=pool.last_modified), 304, None)
    earlier = pool.last_modified - datetime.timedelta(seconds=5)
    assert batch.get_pool(pool_id, if_modified_since=earlier).id == pool_id
    assert rest.get(f"/pools/{pool_id}", params=Q, headers={"If-Match": pool.etag}).status_code == 200


def test_conditional_patch_and_delete_412(batch: BatchClient) -> None:
    pool_id = _create(batch, "cw")
    stale = batch.get_pool(pool_id).etag
    batch.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[m.BatchMetadataItem(name="a", value="b")]),
                      etag=stale, match_condition=MatchConditions.IfNotModified)
    current = batch.get_pool(pool_id).etag
    assert current != stale
    _fails(lambda: batch.update_pool(pool_id, m.BatchPoolUpdateOptions(metadata=[]), etag=stale,
                                     match_condition=MatchConditions.IfNotModified), 412, "ConditionNotMet")
    assert [(i.name, i.value) for i in batch.get_pool(pool_id).metadata] == [("a", "b")]
    _fails(lambda: batch.begin_delete_pool(pool_id, etag=stale, match_condition=MatchConditions.IfNotModified,
                                           polling_interval=0), 412, "ConditionNotMet")
    assert _exists(batch, pool_id) is True
    earlier = batch.get_pool(pool_id).last_modified - datetime.timedelta(seconds=5)
    _fails(lambda: batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1),
                                           if_unmodified_since=earlier, polling_interval=0), 412, "ConditionNotMet")
    assert batch.get_pool(pool_id).target_dedicated_nodes == 0
    batch.begin_delete_pool(pool_id, etag=current, match_condition=MatchConditions.IfNotModified,
                            polling_interval=0).result(timeout=30)
    assert _exists(batch, pool_id) is False


# -- missing pool ---------------------------------------------------------------------------


_MISSING_OPS: dict[str, Callable[[BatchClient, str], Any]] = {
    "get_pool": lambda b, p: b.get_pool(p),
    "update_pool": lambda b, p: b.update_pool(p, m.BatchPoolUpdateOptions(metadata=[])),
    "replace_pool_properties": lambda b, p: b.replace_pool_properties(
        p, m.BatchPoolReplaceOptions(application_package_references=[], metadata=[])),
    "begin_resize_pool": lambda b, p: b.begin_resize_pool(
        p, m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0),
    "begin_stop_pool_resize": lambda b, p: b.begin_stop_pool_resize(p, polling_interval=0),
    "begin_remove_nodes": lambda b, p: b.begin_remove_nodes(
        p, m.BatchNodeRemoveOptions(node_ids=["n1"]), polling_interval=0),
    "begin_delete_pool": lambda b, p: b.begin_delete_pool(p, polling_interval=0),
    "list_nodes": lambda b, p: list(b.list_nodes(p)),
    "get_node": lambda b, p: b.get_node(p, "tvmps_1"),
}


@pytest.mark.parametrize("op", list(_MISSING_OPS))
def test_missing_pool_404(batch: BatchClient, op: str) -> None:
    pool_id = uid("missing")
    error = _fails(lambda: _MISSING_OPS[op](batch, pool_id), 404, "PoolNotFound")
    assert pool_id in _values(error).values()


def test_missing_pool_exists_is_false_over_rest(rest: httpx.Client) -> None:
    response = rest.head(f"/pools/{uid('missing')}", params=Q)
    assert response.status_code == 404 and not response.content


def test_list_usage_metrics(batch: BatchClient, rest: httpx.Client) -> None:
    """A new server has no interval that has ended yet: an empty list, with the documented parameters."""
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=3)
    assert list(batch.list_pool_usage_metrics(start_time=start, end_time=start + datetime.timedelta(hours=1),
                                              filter="startswith(poolId, 'p')")) == []
    assert isinstance(list(batch.list_pool_usage_metrics()), list)
    _rest_fails(rest.get("/poolusagemetrics", params={**Q, "starttime": "2026-01-02T00:00:00Z",
                                                      "endtime": "2026-01-01T00:00:00Z"}), 400, "InvalidQueryParameterValue")
    _rest_fails(rest.get("/poolusagemetrics", params={**Q, "starttime": "yesterday"}), 400, "InvalidQueryParameterValue")
    _rest_fails(rest.get("/poolusagemetrics", params={**Q, "$filter": "poolId ne 'x'"}), 400, "InvalidQueryParameterValue")
