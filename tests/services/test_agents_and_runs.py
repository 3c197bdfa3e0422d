"""Agents, exit reports and lost nodes, as use cases on a real store (no HTTP, no processes)."""

from __future__ import annotations

import pytest

from openbatch.domain.errors import BatchError
from openbatch.services.agents import AgentIdentity
from openbatch.protocol import KillCommand, RebootNodeCommand, RunCommand
from tests.services.conftest import ACCOUNT, World


def _runs(world: World, agent_id: str) -> list[dict]:
    return [c for c in world.notes.take(agent_id) if isinstance(c, RunCommand) and c.kind == "task"]


def test_a_round_places_tasks_and_an_exit_report_completes_them(world: World) -> None:
    world.services.ctx.prefetch = False   # (the round as it places into free slots; with prefetch: test_reservations)
    world.pool("p", nodes=1, slots=2)
    agent_id, (node_id,) = world.host("p")
    world.job("j", "p")
    world.tasks("j", "a", "b", "c")
    assert world.round.schedule().placed == 2
    runs = _runs(world, agent_id)
    assert sorted(run.environment["AZ_BATCH_TASK_ID"] for run in runs) == ["a", "b"]
    assert world.counts("j") == {"active": 1, "running": 2, "completed": 0, "succeeded": 0, "failed": 0}
    # the report of one exit runs the next round for the slot it freed, in the same transaction
    world.services.runs.report(agent_id, [{"id": runs[0].id, "exitCode": 0,
                                           "startTime": "2026-01-01T00:00:00.000000Z"}])
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in _runs(world, agent_id)] == ["c"]
    assert world.counts("j")["completed"] == 1 and world.counts("j")["running"] == 2
    # a run reported twice counts once
    world.services.runs.report(agent_id, [{"id": runs[0].id, "exitCode": 0}])
    assert world.counts("j")["completed"] == 1


def test_an_agent_that_takes_commands_in_the_answer_gets_the_next_runs_there(world: World) -> None:
    world.services.ctx.prefetch = False   # (the next run comes in the answer, not reserved ahead)
    world.pool("p", nodes=1, slots=1)
    agent_id, _ = world.host("p")
    world.job("j", "p")
    world.tasks("j", "a", "b")
    world.round.schedule()
    (first,) = _runs(world, agent_id)
    answer = world.services.runs.report(agent_id, [{"id": first.id, "exitCode": 0}], None, True)
    assert [c.environment["AZ_BATCH_TASK_ID"] for c in answer if isinstance(c, RunCommand)] == ["b"]
    assert world.notes.take(agent_id) == []   # answered, not sent
    assert world.counts("j")["running"] == 1


def test_a_lost_agents_tasks_run_again_and_a_task_lost_too_often_fails(world: World) -> None:
    world.pool("p", nodes=1)
    for attempt in range(1, 6):
        agent_id, (node_id,) = world.host("p")
        if attempt == 1:
            world.job("j", "p")
            world.tasks("j", "t")
        world.round.schedule()
        assert _runs(world, agent_id), f"attempt {attempt}: the task runs"
        assert world.services.agents.agent_lost(agent_id)
        assert world.notes.gone[-1] == agent_id   # a lost local agent's credential ends
        task = world.services.tasks.get(ACCOUNT, "j", "t")
        if attempt <= 3:
            assert task.body["state"] == "active"
            assert task.body["executionInfo"]["requeueCount"] == attempt
            assert task.body["executionInfo"]["retryCount"] == 0
        else:
            assert task.body["state"] == "completed"
            assert task.body["executionInfo"]["failureInfo"]["code"] == "NodeUnusable"
            break
        node = world.services.nodes.get(ACCOUNT, "p", node_id)
        assert node.body["state"] == "unusable" and node.row["agent_id"] is None
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 1, "succeeded": 0, "failed": 1}


def test_a_remote_agent_back_from_a_partition_restarts_its_unusable_nodes_and_kills_stale_runs(
        world: World) -> None:
    world.pool("p", nodes=0)
    agent_id, credential, nodes = world.services.agents.register(ACCOUNT, "p", "far", new_nodes=1)
    identity = world.services.agents.authenticate(agent_id, credential)
    world.services.agents.node_ready(identity, nodes[0].body["id"])
    world.job("j", "p")
    world.tasks("j", "t")
    world.round.schedule()
    (run,) = _runs(world, agent_id)
    assert world.services.agents.agent_lost(agent_id)   # a remote agent keeps its nodes and credential
    assert world.services.tasks.get(ACCOUNT, "j", "t").body["state"] == "active"
    world.services.agents.reconcile(identity, {run.id})
    commands = world.notes.take(agent_id)
    assert KillCommand(id=run.id) in commands
    assert RebootNodeCommand(nodeId=nodes[0].body["id"]) in commands
    assert world.services.nodes.get(ACCOUNT, "p", nodes[0].body["id"]).body["state"] == "rebooting"


def test_registration_counts_against_the_core_quota(world: World) -> None:
    world.pool("p", nodes=0)
    with pytest.raises(BatchError) as refused:
        world.services.agents.register(ACCOUNT, "p", "far", new_nodes=5)   # 5 x 2 cores > 8
    assert refused.value.code == "AccountCoreQuotaReached"
    with pytest.raises(BatchError):
        world.services.agents.authenticate("agent-none", "x")
    assert isinstance(world.services.agents.register(ACCOUNT, "p", "far", new_nodes=4)[0], str)
    assert AgentIdentity("a", ACCOUNT, "p").account == ACCOUNT


def test_a_task_whose_command_never_reached_its_agent_goes_back_to_the_queue(world: World) -> None:
    from datetime import timedelta

    from openbatch.services.agents import UNDELIVERED_AFTER

    world.pool("p", nodes=1, slots=2)
    agent_id, _ = world.host("p")
    world.job("j", "p")
    world.tasks("j", "kept", "lost")
    world.round.schedule()
    runs = {run.environment["AZ_BATCH_TASK_ID"]: run.id for run in _runs(world, agent_id)}
    agent = AgentIdentity(agent_id, ACCOUNT, "p")
    # not yet overdue: nothing happens, whatever the agent says it has
    assert world.services.agents.requeue_undelivered(agent, set()) == 0
    later = world.services.ctx.now() + UNDELIVERED_AFTER + timedelta(seconds=1)
    world.services.ctx.now = lambda: later
    assert world.services.agents.requeue_undelivered(agent, {runs["kept"]}) == 1
    assert world.counts("j") == {"active": 1, "running": 1, "completed": 0, "succeeded": 0, "failed": 0}
    assert world.services.agents.requeue_undelivered(agent, {runs["kept"]}) == 0
