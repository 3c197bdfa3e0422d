"""Autoscale use cases on a real store with a clock the test moves: samples recorded every period,
formulas reading them over time windows, evaluations due by their interval, targets applied with
the deallocation option, and the documented failures (syntax, insufficient samples)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.intervals import Intervals
from openbatch.domain.models import PoolAddParameter, PoolEnableAutoScaleParameter, decode
from openbatch.store.records import NODES
from tests.services.conftest import ACCOUNT, World

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
GROW_WITH_QUEUE = ("pending = $PendingTasks.GetSample(1);\n"
                   "$TargetDedicatedNodes = min(3, max(pending));\n"
                   "$NodeDeallocationOption = taskcompletion;")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(world: World) -> Clock:
    moving = Clock()
    world.services.ctx.now = moving
    world.services.ctx.intervals = Intervals.lowered(timedelta(seconds=5), timedelta(seconds=1))
    return moving


def autoscale_pool(world: World, pool_id: str, formula: str, interval: str = "PT5S") -> None:
    body = {"id": pool_id, "vmSize": "standard_d2s_v3", "enableAutoScale": True, "autoScaleFormula": formula,
            "autoScaleEvaluationInterval": interval,
            "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                               "sku": "22_04-lts"},
                                            "nodeAgentSKUId": "batch.node.ubuntu 22.04"}}
    world.services.pools.add(ACCOUNT, decode(body, PoolAddParameter))


def pool(world: World, pool_id: str) -> dict:
    return world.services.pools.get(ACCOUNT, pool_id).body


def test_a_pool_added_with_autoscale_is_evaluated_at_once(world: World, clock: Clock) -> None:
    autoscale_pool(world, "p", "$TargetDedicatedNodes = 2;")
    body = pool(world, "p")
    assert body["targetDedicatedNodes"] == 2 and body["enableAutoScale"] is True
    assert body["autoScaleRun"]["results"] == ("$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;"
                                               "$NodeDeallocationOption=requeue")
    assert body["autoScaleRun"]["timestamp"] == "2026-05-01T09:00:00.000000Z"
    with world.services.ctx.store.read() as conn:
        assert NODES.count(conn, (ACCOUNT, "p")) == 2


def test_the_pool_grows_with_queued_tasks_and_shrinks_when_idle(world: World, clock: Clock) -> None:
    autoscale_pool(world, "grow", GROW_WITH_QUEUE)
    assert pool(world, "grow")["targetDedicatedNodes"] == 0
    assert pool(world, "grow")["autoScaleRun"]["error"]["code"] == "FormulaEvaluationError"   # no sample yet
    world.job("j", "grow")
    world.tasks("j", *[f"t{i}" for i in range(5)])
    clock.tick(1)
    world.services.autoscale.run_due()                        # records a sample; not due yet
    assert pool(world, "grow")["targetDedicatedNodes"] == 0
    clock.tick(4)
    world.services.autoscale.run_due()
    assert pool(world, "grow")["targetDedicatedNodes"] == 3  # min(3, 5 pending)
    assert "error" not in pool(world, "grow")["autoScaleRun"]
    world.services.jobs.delete(ACCOUNT, "j")
    clock.tick(1)
    world.services.autoscale.run_due()
    clock.tick(4)
    world.services.autoscale.run_due()
    assert pool(world, "grow")["targetDedicatedNodes"] == 0


def test_insufficient_samples_is_the_documented_error_and_changes_nothing(world: World, clock: Clock) -> None:
    autoscale_pool(world, "few", "$TargetDedicatedNodes = 1;")
    world.services.autoscale.record_samples(clock.now)
    run = world.services.autoscale.evaluate(
        ACCOUNT, "few", "$TargetDedicatedNodes = avg($ActiveTasks.GetSample(TimeInterval_Second * 10, 90));")
    assert run["error"]["code"] == "InsufficientSampleData"
    assert "wanted 90%" in run["error"]["values"][0]["value"]
    assert pool(world, "few")["targetDedicatedNodes"] == 1   # evaluate applies nothing


def test_enable_disable_and_the_documented_refusals(world: World, clock: Clock) -> None:
    world.pool("manual", nodes=1)
    with pytest.raises(BatchError) as info:
        world.services.autoscale.evaluate(ACCOUNT, "manual", "$TargetDedicatedNodes = 1;")
    assert info.value.code == "OperationInvalidForCurrentState"
    with pytest.raises(BatchError) as info:
        world.services.autoscale.enable(ACCOUNT, "manual", PoolEnableAutoScaleParameter(
            autoScaleFormula="$TargetDedicatedNodes = (1;"))
    assert info.value.code == "AutoScalingFormulaSyntaxError" and dict(info.value.values)["Line"] == "1"
    with pytest.raises(BatchError) as info:
        world.services.autoscale.enable(ACCOUNT, "manual", PoolEnableAutoScaleParameter(
            autoScaleFormula="$TargetDedicatedNodes = 1;", autoScaleEvaluationInterval="PT1S"))
    assert info.value.code == "InvalidPropertyValue"
    world.services.autoscale.enable(ACCOUNT, "manual", PoolEnableAutoScaleParameter(
        autoScaleFormula="$TargetDedicatedNodes = 2;"))
    body = pool(world, "manual")
    assert body["targetDedicatedNodes"] == 2 and body["autoScaleEvaluationInterval"] == "PT15M"
    world.services.autoscale.disable(ACCOUNT, "manual")
    body = pool(world, "manual")
    assert body["enableAutoScale"] is False and "autoScaleFormula" not in body and body["targetDedicatedNodes"] == 2


def test_resource_metrics_average_what_the_agents_report(world: World, clock: Clock) -> None:
    autoscale_pool(world, "res", "$TargetDedicatedNodes = 0;")
    world.pool("hosted", nodes=2)
    agent_id, _ = world.host("hosted")
    totals = {"cpuPercent": 40.0, "memoryBytes": 1e9, "diskBytes": 5e9, "networkInBytes": 1000.0}
    world.services.agents.seen([agent_id], {agent_id: totals})
    world.services.autoscale.record_samples(clock.now)
    clock.tick(1)
    world.services.agents.seen([agent_id], {agent_id: {**totals, "cpuPercent": 60.0, "networkInBytes": 4000.0}})
    world.services.autoscale.record_samples(clock.now)
    world.services.autoscale.enable(ACCOUNT, "hosted", PoolEnableAutoScaleParameter(
        autoScaleFormula="$TargetDedicatedNodes = 2;"))
    run = world.services.autoscale.evaluate(ACCOUNT, "hosted", "cpu = avg($CPUPercent.GetSample(2));\n"
                                            "net = $NetworkInBytes.GetSample(1);\n$TargetDedicatedNodes = 2;")
    assert "error" not in run, run
    assert "cpu=50;" in run["results"] and "net=[3000]" in run["results"]
