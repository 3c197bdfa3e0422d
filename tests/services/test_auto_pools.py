"""Auto pools as use cases: a job's pool made in its transaction, a quota that says no, the pool's end."""

from __future__ import annotations

from openbatch.domain.models import JobAddParameter, decode
from openbatch.store.records import POOLS
from tests.services.conftest import ACCOUNT, World

SPEC = {"vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1,
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                           "sku": "22_04-lts"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}


def auto_job(world: World, job_id: str, **spec: object) -> dict:
    body = {"id": job_id, "poolInfo": {"autoPoolSpecification": {
        "autoPoolIdPrefix": "run", "poolLifetimeOption": "job", "pool": SPEC, **spec}}}
    return world.services.jobs.add(ACCOUNT, decode(body, JobAddParameter)).body


def pool_ids(world: World) -> set[str]:
    with world.services.ctx.store.read() as conn:
        return {record.body["id"] for record in POOLS.page(conn, (ACCOUNT,), None, None, 100)}


def test_the_pool_quota_becomes_the_jobs_scheduling_error(world: World) -> None:
    for i in range(5):
        world.pool(f"p{i}", nodes=0)
    job = auto_job(world, "j")
    error = job["executionInfo"]["schedulingError"]
    assert error["code"] == "PoolQuotaReached" and error["category"] == "usererror"
    assert "auto pool" in error["message"] and "poolId" not in job["executionInfo"]
    assert world.services.jobs.get(ACCOUNT, "j").body["state"] == "active"
    assert pool_ids(world) == {f"p{i}" for i in range(5)}


def test_the_pool_is_made_with_the_job_and_deleted_when_it_completes(world: World) -> None:
    job = auto_job(world, "j")
    pool_id = job["executionInfo"]["poolId"]
    assert pool_id.startswith("run_") and pool_ids(world) == {pool_id}
    world.services.jobs.terminate(ACCOUNT, "j", None)
    assert world.services.jobs.get(ACCOUNT, "j").body["state"] == "completed"
    assert pool_ids(world) == set()   # its node was never hosted: it leaves at once, and the pool with it


def test_keep_alive_keeps_the_pool(world: World) -> None:
    pool_id = auto_job(world, "j", keepAlive=True)["executionInfo"]["poolId"]
    world.services.jobs.delete(ACCOUNT, "j")
    assert pool_ids(world) == {pool_id}
