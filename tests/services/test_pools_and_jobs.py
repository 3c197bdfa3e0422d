"""Pools, jobs and tasks as use cases on a real store: quotas, refusals, allocation, counts."""

from __future__ import annotations

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.models import PoolResizeParameter, TaskAddParameter, decode
from openbatch.protocol import RunCommand
from openbatch.services.context import ListQuery
from tests.services.conftest import ACCOUNT, World


def test_allocation_stops_at_the_core_quota(world: World) -> None:
    world.pool("p", nodes=1000)   # 2 cores each, 8 cores in all
    pool = world.services.pools.get(ACCOUNT, "p")
    assert pool.body["currentDedicatedNodes"] == 4
    assert [e["code"] for e in pool.body["resizeErrors"]] == ["AccountCoreQuotaReached"]
    world.services.pools.resize(ACCOUNT, "p", PoolResizeParameter(targetDedicatedNodes=2))
    pool = world.services.pools.get(ACCOUNT, "p")
    assert pool.body["currentDedicatedNodes"] == 2 and "resizeErrors" not in pool.body


def test_pool_and_job_quotas(world: World) -> None:
    for i in range(5):
        world.pool(f"p{i}", nodes=0)
    with pytest.raises(BatchError) as refused:
        world.pool("p5", nodes=0)
    assert refused.value.code == "PoolQuotaReached"
    for i in range(5):
        world.job(f"j{i}", "p0")
    with pytest.raises(BatchError) as refused:
        world.job("j5", "p0")
    assert refused.value.code == "ActiveJobAndScheduleQuotaReached"


def test_refused_properties_change_nothing(world: World) -> None:
    world.pool("p", nodes=0)
    world.job("j", "p")
    outcomes = world.services.tasks.add_collection(ACCOUNT, "j", [
        decode({"id": "ok", "commandLine": "x"}, TaskAddParameter),
        decode({"id": "mpi", "commandLine": "x", "multiInstanceSettings": {"coordinationCommandLine": "c"}},
               TaskAddParameter)])
    # (a multi-instance task on a pool without inter-node communication would never run)
    assert [o.error.code if o.error else None for o in outcomes] == [None, "InvalidPropertyValue"]
    assert world.counts("j")["active"] == 1
    with pytest.raises(BatchError) as refused:
        world.pool("mounts", nodes=0, mountConfiguration=[{"nfsMountConfiguration": {"source": "s",
                                                                                      "relativeMountPath": "m"}}])
    assert dict(refused.value.values)["PropertyName"] == "mountConfiguration"
    with pytest.raises(BatchError):
        world.services.pools.get(ACCOUNT, "mounts")


def test_low_priority_nodes_are_counted_apart_from_dedicated_ones(world: World) -> None:
    world.pool("spot", nodes=1, targetLowPriorityNodes=2)
    body = world.services.pools.get(ACCOUNT, "spot").body
    assert (body["currentDedicatedNodes"], body["currentLowPriorityNodes"]) == (1, 2)
    nodes = world.services.nodes.list(ACCOUNT, "spot", ListQuery())[0].records
    assert sorted(n.body["isDedicated"] for n in nodes) == [False, False, True]
    assert all(n.body["id"].endswith("_p") for n in nodes if not n.body["isDedicated"])
    counts, _ = world.services.account.pool_node_counts(ACCOUNT, ListQuery())
    (spot,) = [c for c in counts if c["poolId"] == "spot"]
    assert (spot["dedicated"]["total"], spot["lowPriority"]["total"], spot["lowPriority"]["creating"]) == (1, 2, 2)
    world.services.pools.resize(ACCOUNT, "spot", decode({"targetDedicatedNodes": 1, "targetLowPriorityNodes": 0},
                                                        PoolResizeParameter))
    body = world.services.pools.get(ACCOUNT, "spot").body
    assert (body["currentDedicatedNodes"], body["currentLowPriorityNodes"]) == (1, 0)


def test_equal_priority_jobs_take_turns(world: World) -> None:
    world.services.ctx.prefetch = False   # (turns as placements take them; with prefetch a reservation is a turn)
    world.pool("p", nodes=1)
    agent_id, _ = world.host("p")
    world.job("first", "p")
    world.job("second", "p")
    world.tasks("first", "a0", "a1")
    world.tasks("second", "b0", "b1")
    world.round.schedule()
    order = []
    for _ in range(4):   # one slot: each exit report's own round places the next task
        (run,) = [c for c in world.notes.take(agent_id) if isinstance(c, RunCommand)]
        order.append(run.environment["AZ_BATCH_TASK_ID"])
        world.services.runs.report(agent_id, [{"id": run.id, "exitCode": 0}])
    assert order == ["a0", "b0", "a1", "b1"]
    assert world.counts("first")["succeeded"] == world.counts("second")["succeeded"] == 2


def test_a_pool_growing_counts_its_own_nodes_against_the_quota(world: World) -> None:
    world.pool("p", nodes=2)   # 4 of the 8 cores
    world.services.pools.resize(ACCOUNT, "p", PoolResizeParameter(targetDedicatedNodes=10))
    pool = world.services.pools.get(ACCOUNT, "p")
    assert pool.body["currentDedicatedNodes"] == 4
    assert [e["code"] for e in pool.body["resizeErrors"]] == ["AccountCoreQuotaReached"]
