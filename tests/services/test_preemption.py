"""Preemption of low-priority nodes at the server's rate (a seeded random draw, a clock the test
moves): running tasks requeued, the node preempted, then back as after a reimage."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from openbatch.domain.spot import Spot, preempted_in
from openbatch.store.records import NODES
from tests.services.conftest import ACCOUNT, World


def test_the_chance_of_a_preemption_follows_the_rate() -> None:
    rng = random.Random(7)
    assert not preempted_in(Spot(0.0), 3600, rng)
    hits = sum(preempted_in(Spot(rate_per_hour=3600.0), 1.0, rng) for _ in range(10_000))
    assert 6000 < hits < 6600   # 1 - e^-1 of the passes


def test_nodes_are_preempted_at_the_rate_and_come_back(world: World) -> None:
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    world.services.ctx.now = lambda: now
    world.services.ctx.spot = Spot(rate_per_hour=1e9, recovery=timedelta(seconds=30))
    world.pool("spot", nodes=1, targetLowPriorityNodes=2)
    world.host("spot")
    world.job("j", "spot")
    world.tasks("j", *[f"t{i}" for i in range(3)])
    world.round.schedule()
    assert world.counts("j")["running"] == 3
    world.services.preemption.run_due()             # the first pass only starts the clock
    now += timedelta(seconds=1)
    world.services.preemption.run_due()
    with world.services.ctx.store.read() as conn:
        states = sorted((n.body["isDedicated"], n.body["state"]) for n in
                        (NODES.record(r) for r in conn.exec_driver_sql("SELECT * FROM nodes").all()))
    assert states == [(False, "preempted"), (False, "preempted"), (True, "running")]
    counts = world.counts("j")
    assert (counts["running"], counts["active"]) == (1, 2)   # the spot nodes' tasks went back to the queue
    now += timedelta(seconds=31)
    world.services.ctx.spot = Spot(rate_per_hour=0.0, recovery=timedelta(seconds=30))
    world.services.preemption.run_due()
    with world.services.ctx.store.read() as conn:
        states = sorted(r.state for r in conn.exec_driver_sql("SELECT state FROM nodes").all())
    assert states == ["reimaging", "reimaging", "running"]
    assert world.services.pools.get(ACCOUNT, "spot").body["currentLowPriorityNodes"] == 2


def test_a_pass_after_a_long_gap_draws_for_seconds_not_for_the_gap(world: World) -> None:
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    world.services.ctx.now = lambda: now
    world.services.ctx.quotas = type(world.services.ctx.quotas)(dedicated_cores=100, pools=5, active_jobs=5)
    world.services.ctx.spot = Spot(rate_per_hour=1.0)
    world.services.preemption.rng = random.Random(3)
    world.pool("many", nodes=0, targetLowPriorityNodes=20)
    world.host("many")
    world.services.preemption.run_due()
    now += timedelta(hours=1)                       # another server led meanwhile
    world.services.preemption.run_due()
    with world.services.ctx.store.read() as conn:
        preempted = conn.exec_driver_sql("SELECT count(*) FROM nodes WHERE state = 'preempted'").scalar_one()
    assert preempted <= 1


def test_going_down_drops_a_restart_that_waited_and_a_lost_agent_finishes_a_deallocation(world: World) -> None:
    from openbatch.protocol import RebootNodeCommand

    world.pool("p", nodes=1)
    agent_id, (node_id,) = world.host("p")
    world.job("j", "p")
    world.tasks("j", "t")
    world.round.schedule()
    world.services.node_ops.reboot(ACCOUNT, "p", node_id, "taskcompletion")     # waits for t
    world.notes.take(agent_id)
    world.services.node_ops.deallocate(ACCOUNT, "p", node_id, "requeue")
    assert not [c for c in world.notes.take(agent_id) if isinstance(c, RebootNodeCommand)]
    assert world.services.nodes.get(ACCOUNT, "p", node_id).body["state"] == "deallocated"
    assert world.services.node_ops.start(ACCOUNT, "p", node_id).body["state"] == "starting"
    world.pool("q", nodes=1)
    agent_q, (node_q,) = world.host("q")
    world.job("k", "q")
    world.tasks("k", "u")
    world.round.schedule()
    world.services.node_ops.deallocate(ACCOUNT, "q", node_q, "taskcompletion")   # deallocating until u ends
    world.services.agents.agent_lost(agent_q)
    assert world.services.nodes.get(ACCOUNT, "q", node_q).body["state"] == "deallocated"
    assert world.counts("k")["active"] == 1                                       # u went back to the queue
