"""Multi-instance tasks as use cases on a real store: placement on several nodes, the coordination barrier,
the end of every instance, and the recovery paths (no HTTP, no processes)."""

from __future__ import annotations

from datetime import timedelta

from openbatch.protocol import KillCommand, ProceedCommand, RunCommand
from openbatch.services.agents import UNDELIVERED_AFTER, AgentIdentity
from openbatch.store.engine import Store
from tests.services.conftest import ACCOUNT, World

MPI = {"multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "/bin/true"}}


def _start(world: World) -> tuple[str, RunCommand, list[RunCommand]]:
    world.pool("p", nodes=3, enableInterNodeCommunication=True)
    agent_id, _ = world.host("p")
    world.job("j", "p")
    world.tasks("j", "mpi", **MPI)
    assert world.round.schedule().placed == 1
    runs = [c for c in world.notes.take(agent_id) if isinstance(c, RunCommand)]
    [primary] = [run for run in runs if run.kind == "task"]
    subtasks = [run for run in runs if run.kind == "subtask"]
    assert len(subtasks) == 2 and len({run.nodeId for run in runs}) == 3
    return agent_id, primary, subtasks


def _coordinated(run_id: str) -> dict:
    return {"type": "coordinated", "id": run_id, "exitCode": 0}


def _slots(store: Store) -> list[int]:
    import sqlalchemy as sa

    with store.read() as conn:
        return sorted(conn.execute(sa.text("SELECT used_slots FROM nodes")).scalars())


def test_the_primary_proceeds_once_every_instance_coordinated(world: World) -> None:
    agent_id, primary, subtasks = _start(world)
    assert _slots(world.services.ctx.store) == [1, 1, 1]
    world.services.runs.report(agent_id, [_coordinated(primary.id), _coordinated(subtasks[0].id)])
    assert not any(isinstance(c, ProceedCommand) for c in world.notes.take(agent_id))
    world.services.runs.report(agent_id, [_coordinated(subtasks[1].id)])
    assert ProceedCommand(id=primary.id) in world.notes.take(agent_id)
    # a report sent again (its answer lost, and the proceed with it) gets the proceed again
    world.services.runs.report(agent_id, [_coordinated(subtasks[1].id)])
    assert ProceedCommand(id=primary.id) in world.notes.take(agent_id)
    # so does a reconciling agent that still has the primary
    world.services.agents.reconcile(AgentIdentity(agent_id, ACCOUNT, "p"), {primary.id, *(s.id for s in subtasks)})
    assert ProceedCommand(id=primary.id) in world.notes.take(agent_id)

    world.services.runs.report(agent_id, [{"id": primary.id, "exitCode": 0}])
    assert world.services.tasks.get(ACCOUNT, "j", "mpi").body["executionInfo"]["result"] == "success"
    commands = world.notes.take(agent_id)
    assert all(KillCommand(id=run.id) in commands for run in subtasks)
    subs = world.services.tasks.list_subtasks(ACCOUNT, "j", "mpi")
    assert [(s["id"], s["state"], s["exitCode"], s["result"]) for s in subs] == [
        (1, "completed", 0, "success"), (2, "completed", 0, "success")]
    assert _slots(world.services.ctx.store) == [0, 0, 0]


def test_a_subtask_that_never_got_its_command_sends_the_task_back(world: World) -> None:
    agent_id, primary, subtasks = _start(world)
    agent = AgentIdentity(agent_id, ACCOUNT, "p")
    later = world.services.ctx.now() + UNDELIVERED_AFTER + timedelta(seconds=1)
    world.services.ctx.now = lambda: later
    assert world.services.agents.requeue_undelivered(agent, {primary.id, subtasks[0].id}) == 1
    task = world.services.tasks.get(ACCOUNT, "j", "mpi").body
    assert task["state"] == "active" and task["executionInfo"]["requeueCount"] == 1
    commands = world.notes.take(agent_id)
    assert KillCommand(id=primary.id) in commands and KillCommand(id=subtasks[0].id) in commands
    assert _slots(world.services.ctx.store) == [0, 0, 0]


def test_a_failed_subtask_fails_the_task(world: World) -> None:
    agent_id, primary, subtasks = _start(world)
    world.services.runs.report(agent_id, [{"id": subtasks[1].id, "exitCode": 5}])
    task = world.services.tasks.get(ACCOUNT, "j", "mpi").body
    assert task["state"] == "completed" and task["executionInfo"]["exitCode"] == 5
    commands = world.notes.take(agent_id)
    assert KillCommand(id=primary.id) in commands and KillCommand(id=subtasks[0].id) in commands
    # the primary's late exit and a late coordination change nothing
    world.services.runs.report(agent_id, [_coordinated(subtasks[0].id), {"id": primary.id, "exitCode": 0}])
    assert world.services.tasks.get(ACCOUNT, "j", "mpi").body["executionInfo"]["exitCode"] == 5
    assert _slots(world.services.ctx.store) == [0, 0, 0]
    subs = world.services.tasks.list_subtasks(ACCOUNT, "j", "mpi")
    assert [(s["id"], s["result"]) for s in subs] == [(1, "failure"), (2, "failure")]
    assert subs[1]["exitCode"] == 5 and subs[0]["failureInfo"]["code"] == "TaskEnded"


def test_a_task_failed_by_a_subtask_takes_its_exit_options_job_action(world: World) -> None:
    world.pool("p", nodes=3, enableInterNodeCommunication=True)
    agent_id, _ = world.host("p")
    world.job("j", "p", onTaskFailure="performexitoptionsjobaction")
    world.tasks("j", "mpi", **MPI, exitConditions={"default": {"jobAction": "terminate"}})
    world.round.schedule()
    [subtask, *_] = [c for c in world.notes.take(agent_id) if isinstance(c, RunCommand) and c.kind == "subtask"]
    world.services.runs.report(agent_id, [{"id": subtask.id, "exitCode": 2}])
    job = world.services.jobs.get(ACCOUNT, "j").body
    assert job["state"] in ("terminating", "completed") and job["executionInfo"]["terminateReason"] == "TaskFailed"
