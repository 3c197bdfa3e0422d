"""The operators' overview: tasks, nodes and jobs by state per pool, from counters; one account at a time."""

from __future__ import annotations

from collections import Counter

from openbatch.domain.models import PoolAddParameter, decode
from openbatch.services.overview import as_json
from tests.services.conftest import ACCOUNT, World


def test_the_overview_counts_per_pool_and_keeps_accounts_apart(world: World) -> None:
    world.pool("p", nodes=2, slots=2)
    world.host("p")
    world.job("j", "p")
    world.tasks("j", "a", "b", "c", "d", "e")
    world.round.schedule()
    world.job("waiting", "nowhere")   # its pool does not exist: its tasks count apart
    world.tasks("waiting", "x")
    world.services.pools.add("someone-else", decode({
        "id": "theirs", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1,
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                           "sku": "22_04-lts"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}, PoolAddParameter))

    mine = world.services.overview.overview(ACCOUNT)
    (pool,) = mine.pools
    assert (pool.id, pool.target_dedicated, pool.slots, pool.used_slots) == ("p", 2, 4, 4)
    assert pool.tasks == Counter(active=1, running=4)
    assert pool.nodes == Counter({("running", True): 2})
    assert mine.tasks_without_pool == Counter({(ACCOUNT, "active"): 1})
    assert mine.jobs == Counter({(ACCOUNT, "active"): 2})
    assert as_json(mine)["tasks"] == {"active": 2, "running": 4, "completed": 0}
    assert as_json(mine)["nodes"] == {"running": 2}

    everyone = world.services.overview.overview()
    assert sorted((p.account, p.id) for p in everyone.pools) == [(ACCOUNT, "p"), ("someone-else", "theirs")]
    world.services.overview.ping()
