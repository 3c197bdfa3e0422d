"""Per-account quotas (server settings, as Azure's account quotas): no request makes the server build
in proportion to a number in it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.sdk.conftest import expect_failure
from tests.support.live import LiveServer, start_server


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, spec) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    server = start_server(tmp_path_factory.mktemp("quotas"), None, "sqlite", spec, node_provider="local",
                          quota_dedicated_cores=4, quota_pools=2, quota_active_jobs=2)
    try:
        yield server
    finally:
        server.stop()
        server.app.services.ctx.store.dispose()


@pytest.fixture
def batch(small: LiveServer) -> BatchClient:
    return BatchClient(endpoint=small.url, credential=AzureNamedKeyCredential(small.account, small.key))


def _pool(batch: BatchClient, pool_id: str, nodes: int, vm_size: str = "standard_d2s_v3") -> None:
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size=vm_size, target_dedicated_nodes=nodes,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))


def test_a_huge_resize_allocates_up_to_the_core_quota(batch: BatchClient, small: LiveServer) -> None:
    _pool(batch, "big", 2**31 - 1)   # 2 cores a node, 4 cores in all: 2 nodes
    pool = batch.get_pool("big")
    assert pool.target_dedicated_nodes == 2**31 - 1
    assert pool.current_dedicated_nodes == 2 and pool.allocation_state == "steady"
    assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
    assert {v.name: v.value for v in pool.resize_errors[0].error_values}["CoreQuota"] == "4"
    wait_for(lambda: [n.state for n in batch.list_nodes("big")] == ["idle", "idle"], message="two idle nodes")
    # the quota is the account's: another pool gets what is left, which is nothing
    _pool(batch, "more", 1, "standard_a1_v2")
    assert batch.get_pool("more").current_dedicated_nodes == 0
    assert [e.code for e in batch.get_pool("more").resize_errors] == ["AccountCoreQuotaReached"]
    # within the quota, a resize clears the error
    batch.begin_resize_pool("big", m.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0).result(30)
    pool = batch.get_pool("big")
    assert pool.current_dedicated_nodes == 1 and not pool.resize_errors
    # a third pool passes the pool quota of 2
    error = expect_failure(lambda: _pool(batch, "third", 0), 409, "PoolQuotaReached")
    assert {v["key"]: v["value"] for v in error["values"]}["PoolQuota"] == "2"
    batch.begin_delete_pool("more", polling_interval=1).result(30)


def test_active_jobs_are_bounded(batch: BatchClient) -> None:
    for job_id in ("j1", "j2"):
        batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="big")))
    expect_failure(lambda: batch.create_job(m.BatchJobCreateOptions(id="j3", pool_info=m.BatchPoolInfo(pool_id="big"))),
                   409, "ActiveJobAndScheduleQuotaReached")
    batch.begin_terminate_job("j1", BatchJobTerminateOptions(termination_reason="done"), polling_interval=0).result(30)
    wait_for(lambda: batch.get_job("j1").state == "completed", message="j1 completed")
    batch.create_job(m.BatchJobCreateOptions(id="j3", pool_info=m.BatchPoolInfo(pool_id="big")))


def test_defaults_are_shown_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    from openbatch.cli import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    assert "--quota-dedicated-cores" in text and "(default: 2000)" in text
    assert "--quota-pools" in text and "(default: 100)" in text and "(default: 300)" in text


def test_a_remote_agent_cannot_bring_more_nodes_than_the_quota(small: LiveServer, batch: BatchClient,
                                                              tmp_path: Path) -> None:
    from tests.execution.test_agent_protocol import _register

    _pool(batch, "remote", 0)
    with pytest.raises(AssertionError, match="AccountCoreQuotaReached"):
        _register(small, "remote", nodes=1_000_000)
