"""Compute nodes, account reads, applications and files end to end through azure-batch 15.1.

Compute nodes do not exist yet: node lists are empty, node lookups are 404
NodeNotFound, and task files are 409 TaskFilesUnavailable until a task has run.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as m

from tests.sdk.conftest import API_VERSION, uid
from tests.sdk.conftest import error_values as _values
from tests.sdk.conftest import expect_failure as _fails, expect_rest_failure as _rest_fails

Q = {"api-version": API_VERSION}
NODE_COUNT_FIELDS = {
    "creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting", "startTaskFailed",
    "leavingPool", "unknown", "unusable", "waitingForStartTask", "upgradingOS", "deallocated", "deallocating", "total",
}


# -- helpers --------------------------------------------------------------------------------










def _new_pool(batch: BatchClient, prefix: str = "np", pool_id: str | None = None) -> str:
    pool_id = pool_id or uid(prefix)
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="STANDARD_D2S_V3", target_dedicated_nodes=0,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy",
                                                    sku="22_04-lts", version="latest"),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
    ))
    return pool_id


@pytest.fixture
def pool(batch: BatchClient) -> str:
    return _new_pool(batch)


@pytest.fixture
def task(batch: BatchClient, pool: str) -> tuple[str, str]:
    """A job on an empty pool with one task that has not run (and cannot: there are no nodes)."""
    job_id, task_id = uid("job"), uid("task")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/echo hello"))
    return job_id, task_id


# -- compute nodes --------------------------------------------------------------------------


def test_list_nodes_of_a_new_pool_is_empty(batch: BatchClient, rest: httpx.Client, pool: str) -> None:
    assert list(batch.list_nodes(pool)) == []
    assert list(batch.list_nodes(pool, filter="state eq 'idle'", select=["id", "state"], max_results=5)) == []
    body = rest.get(f"/pools/{pool}/nodes", params=Q).json()
    assert body["value"] == [] and "odata.nextLink" not in body
    assert body["odata.metadata"].endswith("/$metadata#nodes")


def test_list_nodes_bad_filter_400(batch: BatchClient, pool: str) -> None:
    error = _fails(lambda: list(batch.list_nodes(pool, filter="state eq 'asleep'")), 400, None)
    assert error["code"] in ("InvalidQueryParameterValue", "InvalidInput"), error
    _fails(lambda: list(batch.list_nodes(pool, filter="vmSize eq 'x'")), 400, None)


def test_nodes_of_a_missing_pool_404(batch: BatchClient) -> None:
    missing = uid("gone")
    error = _fails(lambda: list(batch.list_nodes(missing)), 404, "PoolNotFound")
    assert missing in _values(error).values()
    _fails(lambda: batch.get_node(missing, "tvmps_1"), 404, "PoolNotFound")


def test_get_missing_node_404(batch: BatchClient, pool: str) -> None:
    error = _fails(lambda: batch.get_node(pool, "tvmps_nonexistent"), 404, "NodeNotFound")
    assert "tvmps_nonexistent" in _values(error).values()
    _fails(lambda: batch.get_node(pool, "tvmps_nonexistent", select=["id"]), 404, "NodeNotFound")


# -- account: pool node counts --------------------------------------------------------------


def _zero(counts: m.BatchNodeCounts) -> None:
    for name in ("creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
                 "start_task_failed", "leaving_pool", "unknown", "unusable", "waiting_for_start_task",
                 "upgrading_os", "deallocated", "deallocating", "total"):
        assert getattr(counts, name) == 0, f"{name} = {getattr(counts, name)}"


def test_pool_node_counts_one_entry_per_pool(batch: BatchClient) -> None:
    mine = [_new_pool(batch, "nc") for _ in range(2)]
    counts = list(batch.list_pool_node_counts())
    ids = [c.pool_id for c in counts]
    assert len(ids) == len(set(ids)), f"a pool is listed twice: {ids}"
    assert set(mine) <= set(ids)
    assert set(ids) == {p.id for p in batch.list_pools(select=["id"])}
    for entry in counts:
        if entry.pool_id in mine:
            _zero(entry.dedicated)
            _zero(entry.low_priority)


def test_pool_node_counts_filter_by_pool_id(batch: BatchClient, rest: httpx.Client, pool: str) -> None:
    counts = list(batch.list_pool_node_counts(filter=f"poolId eq '{pool}'"))
    assert [c.pool_id for c in counts] == [pool]
    _zero(counts[0].dedicated)
    _zero(counts[0].low_priority)
    assert list(batch.list_pool_node_counts(filter=f"poolId eq '{uid('none')}'")) == []
    wire = rest.get("/nodecounts", params={**Q, "$filter": f"poolId eq '{pool}'"}).json()
    assert len(wire["value"]) == 1
    entry = wire["value"][0]
    assert entry["poolId"] == pool
    assert entry["dedicated"] == dict.fromkeys(NODE_COUNT_FIELDS, 0)
    assert entry["lowPriority"] == dict.fromkeys(NODE_COUNT_FIELDS, 0)
    assert wire["odata.metadata"].endswith("/$metadata#poolnodecounts")


def test_pool_node_counts_bad_filter_400(rest: httpx.Client) -> None:
    for flt in ("state eq 'active'", "poolId ne 'x'", "poolId eq"):
        response = rest.get("/nodecounts", params={**Q, "$filter": flt})
        assert response.status_code == 400, (flt, response.text)
        assert response.json()["code"] in ("InvalidQueryParameterValue", "InvalidInput"), response.text


def test_pool_node_counts_maxresults_range(rest: httpx.Client, batch: BatchClient) -> None:
    _new_pool(batch, "ncm")
    _new_pool(batch, "ncm")
    one = rest.get("/nodecounts", params={**Q, "maxresults": 1}).json()
    assert len(one["value"]) == 1 and one["odata.nextLink"]
    ten = rest.get("/nodecounts", params={**Q, "maxresults": 10}).json()
    assert 2 <= len(ten["value"]) <= 10
    for bad in (0, 11, 1000):
        _rest_fails(rest.get("/nodecounts", params={**Q, "maxresults": bad}), 400, "OutOfRangeQueryParameterValue")
    _fails(lambda: list(batch.list_pool_node_counts(max_results=11)), 400, "OutOfRangeQueryParameterValue")


def test_pool_node_counts_pages_by_ten(rest: httpx.Client, batch: BatchClient) -> None:
    prefix = uid("ncp")
    mine = [_new_pool(batch, pool_id=f"{prefix}-{i:02d}") for i in range(11)]
    first = rest.get("/nodecounts", params=Q).json()
    assert len(first["value"]) == 10, "the default (and maximum) page is 10 pools"
    assert first["odata.nextLink"].startswith("http")
    seen = [e["poolId"] for e in first["value"]]
    link = first.get("odata.nextLink")
    while link:
        page = rest.get(link).json()
        assert 1 <= len(page["value"]) <= 10
        seen += [e["poolId"] for e in page["value"]]
        link = page.get("odata.nextLink")
    assert len(seen) == len(set(seen)) and set(mine) <= set(seen)
    through_sdk = [c.pool_id for c in batch.list_pool_node_counts()]
    assert through_sdk == seen
    assert [c.pool_id for c in batch.list_pool_node_counts(max_results=3) if c.pool_id.startswith(prefix)] == mine


# -- account: supported images --------------------------------------------------------------


def test_supported_images(batch: BatchClient, rest: httpx.Client) -> None:
    images = list(batch.list_supported_images())
    assert images, "at least one supported image"
    for image in images:
        assert image.os_type == m.OSType.LINUX
        assert image.verification_type == m.ImageVerificationType.VERIFIED
        assert image.node_agent_sku_id.startswith("batch.node.")
        assert image.image_reference.publisher and image.image_reference.offer and image.image_reference.sku
    skus = [i.node_agent_sku_id for i in images]
    assert "batch.node.ubuntu 22.04" in skus and len(skus) == len(set(skus))
    assert [i.node_agent_sku_id for i in batch.list_supported_images(filter="osType eq 'linux'")] == skus
    assert [i.node_agent_sku_id for i in batch.list_supported_images(filter="verificationType eq 'verified'")] == skus
    assert list(batch.list_supported_images(filter="osType eq 'windows'")) == []
    assert [i.node_agent_sku_id for i in batch.list_supported_images(
        filter="nodeAgentSKUId eq 'batch.node.ubuntu 22.04'")] == ["batch.node.ubuntu 22.04"]
    wire = rest.get("/supportedimages", params=Q).json()
    assert wire["odata.metadata"].endswith("/$metadata#supportedimages")
    assert all(i["osType"] == "linux" for i in wire["value"])


def test_supported_images_paging(batch: BatchClient, rest: httpx.Client) -> None:
    skus = [i.node_agent_sku_id for i in batch.list_supported_images()]
    assert [i.node_agent_sku_id for i in batch.list_supported_images(max_results=1)] == skus, \
        "a page of maxresults images must link to the rest"
    first = rest.get("/supportedimages", params={**Q, "maxresults": 1}).json()
    assert len(first["value"]) == 1
    if len(skus) > 1:
        assert first["odata.nextLink"].startswith("http")
    _rest_fails(rest.get("/supportedimages", params={**Q, "maxresults": 0}), 400, "OutOfRangeQueryParameterValue")


def test_supported_images_bad_filter_400(rest: httpx.Client) -> None:
    for flt in ("osType eq 'beos'", "publisher eq 'canonical'", "osType eq"):
        response = rest.get("/supportedimages", params={**Q, "$filter": flt})
        assert response.status_code == 400, (flt, response.text)


# -- applications ---------------------------------------------------------------------------


def test_applications(batch: BatchClient, rest: httpx.Client) -> None:
    assert list(batch.list_applications()) == []
    assert list(batch.list_applications(max_results=5)) == []
    body = rest.get("/applications", params=Q).json()
    assert body["value"] == [] and body["odata.metadata"].endswith("/$metadata#applications")
    error = _fails(lambda: batch.get_application("blender"), 404, "ApplicationNotFound")
    assert "blender" in _values(error).values()


# -- task files -----------------------------------------------------------------------------


def _task_file_ops(batch: BatchClient, job_id: str, task_id: str, path: str) -> dict[str, Callable[[], Any]]:
    return {
        "download_task_file": lambda: batch.download_task_file(job_id, task_id, path),
        "delete_task_file": lambda: batch.delete_task_file(job_id, task_id, path),
        "get_task_file_properties": lambda: batch.get_task_file_properties(job_id, task_id, path),
    }


@pytest.mark.parametrize("path", ["stdout.txt", "wd/out.txt", "wd/sub dir/ü.txt"])
def test_task_files_before_the_task_ran_409(batch: BatchClient, task: tuple[str, str], path: str) -> None:
    job_id, task_id = task
    error = _fails(lambda: list(batch.list_task_files(job_id, task_id)), 409, "TaskFilesUnavailable")
    assert _values(error).get("TaskId") == task_id
    _fails(lambda: list(batch.list_task_files(job_id, task_id, recursive=True)), 409, "TaskFilesUnavailable")
    for name, call in _task_file_ops(batch, job_id, task_id, path).items():
        head = name == "get_task_file_properties"
        _fails(call, 409, None if head else "TaskFilesUnavailable")


def test_task_file_path_with_slash_routes_over_rest(rest: httpx.Client, task: tuple[str, str]) -> None:
    job_id, task_id = task
    for path in ("wd%2Fout.txt", "wd/out.txt", "wd%2Fdeep%2Fer/x.txt"):
        url = f"/jobs/{job_id}/tasks/{task_id}/files/{path}"
        _rest_fails(rest.get(url, params=Q), 409, "TaskFilesUnavailable")
        _rest_fails(rest.delete(url, params=Q), 409, "TaskFilesUnavailable")
        head = rest.head(url, params=Q)
        assert head.status_code == 409 and not head.content, (path, head.status_code)


def test_task_files_of_a_missing_task_404(batch: BatchClient, task: tuple[str, str]) -> None:
    job_id, _ = task
    missing = uid("notask")
    error = _fails(lambda: list(batch.list_task_files(job_id, missing)), 404, "TaskNotFound")
    assert missing in _values(error).values()
    for name, call in _task_file_ops(batch, job_id, missing, "wd/out.txt").items():
        _fails(call, 404, None if name == "get_task_file_properties" else "TaskNotFound")


def test_task_files_of_a_missing_job_404(batch: BatchClient) -> None:
    job_id = uid("nojob")
    _fails(lambda: list(batch.list_task_files(job_id, "t1")), 404, "JobNotFound")
    for name, call in _task_file_ops(batch, job_id, "t1", "stdout.txt").items():
        _fails(call, 404, None if name == "get_task_file_properties" else "JobNotFound")


# -- node files -----------------------------------------------------------------------------


def _node_file_ops(batch: BatchClient, pool_id: str, node_id: str, path: str) -> dict[str, Callable[[], Any]]:
    return {
        "list_node_files": lambda: list(batch.list_node_files(pool_id, node_id)),
        "download_node_file": lambda: batch.download_node_file(pool_id, node_id, path),
        "delete_node_file": lambda: batch.delete_node_file(pool_id, node_id, path),
        "get_node_file_properties": lambda: batch.get_node_file_properties(pool_id, node_id, path),
    }


def test_node_files_of_a_missing_node_404(batch: BatchClient, rest: httpx.Client, pool: str) -> None:
    node_id = "tvmps_missing"
    for name, call in _node_file_ops(batch, pool, node_id, "startup/stdout.txt").items():
        error = _fails(call, 404, None if name == "get_node_file_properties" else "NodeNotFound")
        if error:
            assert node_id in _values(error).values()
    _rest_fails(rest.get(f"/pools/{pool}/nodes/{node_id}/files/shared%2Fa.txt", params=Q), 404, "NodeNotFound")
    _rest_fails(rest.get(f"/pools/{pool}/nodes/{node_id}/files/shared/a.txt", params=Q), 404, "NodeNotFound")


def test_node_files_of_a_missing_pool_404(batch: BatchClient) -> None:
    pool_id = uid("nopool")
    for name, call in _node_file_ops(batch, pool_id, "tvmps_1", "startup/stdout.txt").items():
        _fails(call, 404, None if name == "get_node_file_properties" else "PoolNotFound")
