"""Prefetch: tasks reserved for a node, started by its agent as slots free, and cancelled two-phase.

A simulated agent (what agent/main.py does with runs: the queue, the slots, the events it reports)
drives the services on both stores; the property test interleaves its starts and exits with the
operations that cancel reservations, and checks that no task ever runs twice at once, that every
task ends, and that the counters and the node's slots come out exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from openbatch.domain.models import JobDisableParameter, TaskUpdateParameter, decode
from openbatch.domain.quotas import Quotas
from openbatch.domain.reservations import PREFETCH_DEPTH
from openbatch.protocol import KillCommand, RebootNodeCommand, RemoveNodeCommand, RunCommand
from openbatch.scheduler.round import SchedulingRound
from openbatch.services import Services
from openbatch.store.engine import Store

from .conftest import ACCOUNT, Recorder, World

_ids = itertools.count()


@pytest.fixture
def any_world(any_store: Store) -> Iterator[World]:
    services = Services.create(any_store, node_provider=True, quotas=Quotas(dedicated_cores=100_000, pools=1000,
                                                                          active_jobs=1000))
    services.ctx.notifier = Recorder()
    services.ctx.prefetch = True   # (the default; a server setting that may turn it off)
    scheduling = SchedulingRound(services.ctx)
    services.ctx.schedule_in = scheduling.schedule_pool_in
    world = World(services, services.ctx.notifier, scheduling)  # type: ignore[arg-type]
    yield world
    _assert_reserved_slots_exact(world)   # whatever the test did, every node's reserved slots are exact


@dataclass
class SimAgent:
    """One agent hosting one node, as agent/main.py runs it (no processes: runs end when told)."""

    world: World
    agent_id: str
    node_id: str
    slots: int
    credential: str = ""
    queue: list[RunCommand] = field(default_factory=list)
    running: dict[str, RunCommand] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: (task id, run id) of every run that started, and of those that ran to their end.
    started: list[tuple[str, str]] = field(default_factory=list)
    finished: list[tuple[str, str]] = field(default_factory=list)

    def used(self) -> int:
        return sum(run.slots for run in self.running.values())

    def take(self) -> None:
        for command in self.world.notes.take(self.agent_id):
            self.handle(command)

    def handle(self, command: Any) -> None:
        if isinstance(command, RunCommand):
            if command.reserved:
                self.queue.append(command)
            else:
                self._start(command)
        elif isinstance(command, KillCommand):
            queued = [run for run in self.queue if run.id == command.id]
            if queued:
                self.queue.remove(queued[0])
                self.events.append({"type": "unreserved", "id": command.id})
            elif command.id in self.running:
                run = self.running.pop(command.id)
                if run.reserved:
                    self.events.append({"type": "unreserved", "id": command.id})
        elif isinstance(command, (RebootNodeCommand, RemoveNodeCommand)):
            self.queue.clear()
            self.running.clear()
            if isinstance(command, RebootNodeCommand):
                identity = self.world.services.agents.authenticate(self.agent_id, self.credential)
                self.world.services.agents.node_ready(identity, self.node_id)
        self.start_queued()

    def start_queued(self) -> None:
        while self.queue and self.used() + self.queue[0].slots <= self.slots:
            run = self.queue.pop(0)
            self.events.append({"type": "started", "id": run.id})
            self._start(run)

    def _start(self, run: RunCommand) -> None:
        if run.kind == "task":
            task_id = run.environment["AZ_BATCH_TASK_ID"]
            assert all(self.running[other].environment["AZ_BATCH_TASK_ID"] != task_id for other in self.running
                       if self.running[other].kind == "task"), f"task {task_id} runs twice at once"
            self.started.append((task_id, run.id))
        self.running[run.id] = run

    def finish(self, index: int, code: int = 0) -> None:
        if not self.running:
            return
        run_id = sorted(self.running)[index % len(self.running)]
        run = self.running.pop(run_id)
        if run.kind == "task":
            self.finished.append((run.environment["AZ_BATCH_TASK_ID"], run_id))
        self.events.append({"type": "exited", "id": run_id, "exitCode": code, "reserved": run.reserved or None})
        self.start_queued()

    def report(self) -> None:
        events, self.events = self.events, []
        if events:
            for command in self.world.services.runs.report(self.agent_id, events, None, True):
                self.handle(command)


def _hosts(world: World, pool_id: str, slots: int) -> list[SimAgent]:
    """An agent for each node of the pool that waits for one, its node up."""
    from openbatch.services.agents import unhosted_local_nodes

    agents = []
    for node_id in [node for _, pool, node, _ in unhosted_local_nodes(world.services.ctx) if pool == pool_id]:
        agent_id, credential, _ = world.services.agents.register(ACCOUNT, pool_id, "host", node_ids=[node_id])
        world.services.agents.node_ready(world.services.agents.authenticate(agent_id, credential), node_id)
        agents.append(SimAgent(world, agent_id, node_id, slots, credential=credential))
    return agents


def _agent(world: World, pool_id: str, slots: int) -> SimAgent:
    """A pool of one node with ``slots``, and its agent."""
    world.pool(pool_id, nodes=1, slots=slots)
    (agent,) = _hosts(world, pool_id, slots)
    return agent


def _with_tasks(world: World, slots: int, *task_ids: str) -> SimAgent:
    """Pool p of one node, job j with the tasks, a round, and the agent holding what it sent."""
    agent = _agent(world, "p", slots)
    world.job("j", "p")
    world.tasks("j", *task_ids)
    world.round.schedule()
    agent.take()
    return agent


def _task(world: World, job_id: str, task_id: str) -> dict[str, Any]:
    return world.services.tasks.get(ACCOUNT, job_id, task_id).body


# -- examples -----------------------------------------------------------------------------------


def test_a_full_node_takes_reservations_its_agent_starts_as_slots_free(any_world: World) -> None:
    world = any_world
    depth = 2 * PREFETCH_DEPTH   # a node of 2 slots holds this many 1-slot tasks reserved
    ids = [f"t{i:02d}" for i in range(2 + depth + 1)]
    agent = _with_tasks(world, 2, *ids)
    assert sorted(run.environment["AZ_BATCH_TASK_ID"] for run in agent.running.values()) == ids[:2]
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.queue] == ids[2:2 + depth]
    assert world.counts("j") == {"active": depth + 1, "running": 2, "completed": 0, "succeeded": 0, "failed": 0}
    assert _task(world, "j", ids[2])["state"] == "active" and "nodeInfo" not in _task(world, "j", ids[2])
    agent.finish(0)   # the first slot frees: the queue's head starts at once, before the server hears of it
    assert ids[2] in {run.environment["AZ_BATCH_TASK_ID"] for run in agent.running.values()}
    agent.report()   # started, exited: it runs on the node, and the last task is reserved in its place
    assert world.counts("j") == {"active": depth, "running": 2, "completed": 1, "succeeded": 1, "failed": 0}
    started = _task(world, "j", ids[2])
    assert started["state"] == "running" and started["nodeInfo"]["nodeId"] == agent.node_id
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.queue] == ids[3:]


def test_an_exit_that_comes_before_its_start_completes_the_task(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)          # a ends, b starts from the queue ...
    agent.report()
    agent.finish(0)          # ... and ends too; its report says "exited" (reserved) only
    agent.events = [event for event in agent.events if event["type"] != "started"]
    agent.report()
    assert _task(world, "j", "b")["state"] == "completed"
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}


def _assert_reserved_slots_exact(world: World) -> None:
    """Every node's reserved_slots is what its reservations hold (cancelling ones hold nothing)."""
    import sqlalchemy as sa

    from openbatch.store import schema

    tasks, nodes = schema.tasks, schema.nodes
    with world.services.ctx.store.read() as conn:
        held = dict(conn.execute(sa.select(tasks.c.reserved_node_pk, sa.func.sum(tasks.c.required_slots))
                                 .where(tasks.c.reserved_node_pk.is_not(None)).group_by(tasks.c.reserved_node_pk)).all())
        kept = dict(conn.execute(sa.select(nodes.c.pk, nodes.c.reserved_slots)).all())
    assert kept == {pk: int(held.get(pk, 0)) for pk in kept}, (kept, held)


def _node(world: World, agent: SimAgent) -> dict[str, Any]:
    from openbatch.domain.nodes import render

    record = world.services.nodes.get(ACCOUNT, "p", agent.node_id)
    return render(record.body, record.row)


def _transitions() -> dict[tuple[str, str], float]:
    from openbatch import metrics

    return {(old, new): metrics.REGISTRY.get_sample_value(
        "openbatch_task_transitions_total", {"from_state": old, "to_state": new}) or 0.0
        for old, new in (("active", "running"), ("running", "completed"), ("running", "active"))}


def _task_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many task rows each write of the tasks table's records (and of its reservations) stores from now on."""
    from openbatch.store import reservation_queries
    from openbatch.store.records import TASKS

    written: list[int] = []

    def counted(write: Any, rows: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            written.append(rows(*args))
            return write(*args, **kwargs)
        return call

    monkeypatch.setattr(TASKS, "update_many", counted(TASKS.update_many, lambda conn, changes, now: len(changes)))
    monkeypatch.setattr(TASKS, "update", counted(TASKS.update, lambda *_: 1))
    monkeypatch.setattr(TASKS, "set_columns", counted(TASKS.set_columns, lambda *_: 1))
    monkeypatch.setattr(reservation_queries, "clear", counted(reservation_queries.clear, lambda conn, pks: len(list(pks))))
    return written


def test_a_reserved_run_reported_by_its_exit_alone_is_stored_once_started_and_ended(
        any_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its start and end in one report: the task's row written once, from active to completed; the node
    counts the run (its slots were never held on the server's books); both steps are counted events."""
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)          # a ends, b starts from the queue and ends before its "started" was sent
    agent.finish(0)
    agent.events = [event for event in agent.events if event["type"] != "started"]
    before, writes = _transitions(), _task_writes(monkeypatch)
    agent.report()
    after = _transitions()
    task = _task(world, "j", "b")
    assert task["state"] == "completed" and task["executionInfo"]["result"] == "success"
    assert task["nodeInfo"]["nodeId"] == agent.node_id and task["executionInfo"]["startTime"]
    assert task["executionInfo"]["endTime"] >= task["executionInfo"]["startTime"]
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}
    node = _node(world, agent)
    assert (node["state"], node["runningTasksCount"], node["runningTaskSlotsCount"]) == ("idle", 0, 0)
    assert (node["totalTasksRun"], node["totalTasksSucceeded"]) == (2, 2)
    assert {step: after[step] - before[step] for step in after} == {
        ("active", "running"): 1, ("running", "completed"): 2, ("running", "active"): 0}
    assert sum(writes) == 2   # a's end and b's (started and ended) in one: not b's start, then its end
    with world.services.ctx.store.read() as conn:
        import sqlalchemy as sa

        from openbatch.store import schema

        held = conn.execute(sa.select(sa.func.count()).select_from(schema.tasks)
                            .where(schema.tasks.c.reserved_run_id.is_not(None))).scalar_one()
    assert held == 0
    _assert_reserved_slots_exact(world)


def test_a_run_that_starts_and_ends_beside_other_reports_is_stored_in_two_steps(
        any_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report that also carries a start task's (or a preparation's, a subtask's) exit stores a reserved
    run's start before those are applied, as if it had come alone: they may change the task or its job."""
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)
    agent.finish(0)
    agent.events = [event for event in agent.events if event["type"] != "started"]
    agent.events.insert(0, {"type": "exited", "id": "s-not-known", "exitCode": 0})
    writes = _task_writes(monkeypatch)
    agent.report()
    assert _task(world, "j", "b")["state"] == "completed"
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}
    assert sum(writes) == 3   # b's start, then a's end and b's


def test_an_exit_and_an_unreserved_of_one_run_in_one_report_count_once(any_world: World) -> None:
    """(An agent says one or the other; if both come, the run ran to its end: its result counts.)"""
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)
    agent.finish(0)
    agent.events = [event for event in agent.events if event["type"] != "started"]
    run_id = agent.finished[-1][1]
    agent.events.append({"type": "unreserved", "id": run_id})
    agent.report()
    assert _task(world, "j", "b")["state"] == "completed"
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}


def test_a_reserved_run_that_fails_in_its_first_word_is_retried(any_world: World) -> None:
    world = any_world
    agent = _agent(world, "p", 1)
    world.job("j", "p")
    world.tasks("j", "a", "b", constraints={"maxTaskRetryCount": 1})
    world.round.schedule()
    agent.take()
    agent.finish(0)          # a ends; b starts from the queue and fails before its "started" was sent
    agent.finish(0, code=3)
    agent.events = [event for event in agent.events if event["type"] != "started"]
    agent.report()
    task = _task(world, "j", "b")
    assert task["state"] in ("active", "running") and task["executionInfo"]["retryCount"] == 1
    node = _node(world, agent)
    assert (node["totalTasksRun"], node["totalTasksSucceeded"]) == (2, 1)
    for _ in range(5):       # its retry runs to its end
        agent.take()
        agent.finish(0)
        agent.report()
        world.round.schedule()
    assert _task(world, "j", "b")["state"] == "completed"
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}
    node = _node(world, agent)
    assert (node["runningTasksCount"], node["runningTaskSlotsCount"], node["totalTasksRun"]) == (0, 0, 3)


def test_terminating_a_reserved_task_drops_its_run_and_a_start_on_the_way_is_killed(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)                                  # b starts on the node; the server does not know yet
    world.services.tasks.terminate(ACCOUNT, "j", "b")
    assert _task(world, "j", "b")["state"] == "completed"
    agent.report()                                   # its "started" is not applied: b stays completed
    assert _task(world, "j", "b")["state"] == "completed"
    agent.take()                                     # the kill: b's run ends, "unreserved"
    assert agent.running == {} and agent.events == [{"type": "unreserved", "id": agent.started[-1][1]}]
    agent.report()
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 1, "failed": 1}


def test_a_cancelled_reservation_is_no_candidate_until_the_agent_answers(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    world.services.jobs.disable(ACCOUNT, "j", decode({"disableTasks": "requeue"}, JobDisableParameter))
    world.services.jobs.enable(ACCOUNT, "j")
    world.round.schedule()
    agent.take()   # the kills, then a's run again; b is not placed while its reservation is cancelling
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.running.values()] == ["a"]
    assert agent.queue == [] and [event["type"] for event in agent.events] == ["unreserved"]
    agent.report()   # b is free again: the round of the report reserves it anew
    world.round.schedule()
    agent.take()
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.queue] == ["b"]


def test_a_run_that_ended_before_its_cancel_arrived_counts(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)    # b starts ...
    agent.finish(0)    # ... and ends, before the agent hears of the update that cancels its reservation
    world.services.tasks.update(ACCOUNT, "j", "b", decode({"constraints": {"maxTaskRetryCount": 1}},
                                                          TaskUpdateParameter))
    agent.report()
    assert _task(world, "j", "b")["state"] == "completed"
    agent.take()   # the kill finds nothing
    assert agent.events == []
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}


def test_no_reservations_for_jobs_with_limits_or_preparation(any_world: World) -> None:
    world = any_world
    agent = _agent(world, "p", slots=1)
    world.job("limited", "p", maxParallelTasks=1)
    world.tasks("limited", "a", "b")
    world.round.schedule()
    world.job("prepared", "p", jobPreparationTask={"commandLine": "/bin/true"})
    world.tasks("prepared", "c")
    world.round.schedule()
    agent.take()
    assert agent.queue == []


def test_a_lost_agents_reservations_are_forgotten(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    assert len(agent.queue) == 1
    assert world.services.agents.agent_lost(agent.agent_id)
    assert world.counts("j")["active"] == 2
    (replacement,) = _hosts(world, "p", 1)
    world.round.schedule()
    replacement.take()
    assert sorted(run.environment["AZ_BATCH_TASK_ID"] for run in [*replacement.running.values(), *replacement.queue]) \
        == ["a", "b"]


def test_a_reservation_the_agent_never_got_is_forgotten(any_world: World) -> None:
    world = any_world
    agent = _agent(world, "p", slots=1)
    world.job("j", "p")
    world.tasks("j", "a", "b")
    world.round.schedule()
    world.notes.take(agent.agent_id)   # the answer with both runs is lost on the way
    identity = world.services.agents.authenticate(agent.agent_id, agent.credential)
    clock = world.services.ctx.now
    world.services.ctx.now = lambda: clock() + timedelta(minutes=2)
    try:
        assert world.services.agents.requeue_undelivered(identity, set()) == 1   # (the running task)
    finally:
        world.services.ctx.now = clock
    world.round.schedule()
    agent.take()
    assert sorted(run.environment["AZ_BATCH_TASK_ID"] for run in [*agent.running.values(), *agent.queue]) == ["a", "b"]


def test_a_reboot_cancels_the_nodes_reservations_before_the_agent_restarts_it(any_world: World) -> None:
    world = any_world
    agent = _agent(world, "p", slots=1)
    world.job("j", "p")
    world.tasks("j", "a", "b")
    world.round.schedule()
    world.notes.take(agent.agent_id)
    world.services.node_ops.reboot(ACCOUNT, "p", agent.node_id)
    kinds = [type(command).__name__ for command in world.notes.take(agent.agent_id)]
    assert kinds[-1] == "RebootNodeCommand" and "KillCommand" in kinds


# -- the property -------------------------------------------------------------------------------

_OPS = st.lists(st.tuples(st.sampled_from(["finish", "fail", "report", "take", "round", "terminate", "update",
                                          "disable", "enable", "reboot", "delete"]),
                          st.integers(min_value=0, max_value=7)), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, slots=st.integers(min_value=1, max_value=3))
def test_no_task_runs_twice_and_the_counters_stay_exact(any_world: World, ops: list[tuple[str, int]],
                                                        slots: int) -> None:
    world = any_world
    n = next(_ids)
    pool_id, job_id = f"p{n}", f"j{n}"
    agent = _agent(world, pool_id, slots)
    world.job(job_id, pool_id)
    ids = [f"t{i}" for i in range(8)]
    world.tasks(job_id, *ids)
    world.round.schedule()
    touched = False   # a task requeued or stopped may run again (after its earlier run was killed)
    deleted: set[str] = set()
    for op, k in ops:
        task_id = ids[k]
        if op in ("finish", "fail"):
            agent.finish(k, 0 if op == "finish" else 1)
        elif op == "report":
            agent.report()
        elif op == "take":
            agent.take()
        elif op == "round":
            world.round.schedule()
        elif task_id in deleted:
            continue
        elif op == "terminate" and _task(world, job_id, task_id)["state"] != "completed":
            world.services.tasks.terminate(ACCOUNT, job_id, task_id)
        elif op == "update" and _task(world, job_id, task_id)["state"] != "completed":
            world.services.tasks.update(ACCOUNT, job_id, task_id, decode({"constraints": {"maxTaskRetryCount": 0}},
                                                                         TaskUpdateParameter))
        elif op == "delete":
            world.services.tasks.delete(ACCOUNT, job_id, task_id)
            deleted.add(task_id)
        elif op == "disable" and world.services.jobs.get(ACCOUNT, job_id).body["state"] == "active":
            world.services.jobs.disable(ACCOUNT, job_id, decode({"disableTasks": "requeue"}, JobDisableParameter))
            touched = True
        elif op == "enable" and world.services.jobs.get(ACCOUNT, job_id).body["state"] == "disabled":
            world.services.jobs.enable(ACCOUNT, job_id)
        elif op == "reboot" and world.services.pools.get(ACCOUNT, pool_id).body["state"] == "active":
            try:
                world.services.node_ops.reboot(ACCOUNT, pool_id, agent.node_id)
                touched = True
            except Exception as error:   # (a node restarting already)
                assert getattr(error, "code", "") in ("NodeBeingRebooted", "NodeBeingReimaged", "NodeBeingStarted",
                                                      "OperationNotValidOnNode"), error
        running = world.counts(job_id)["running"]
        assert running <= slots, (op, running)   # never more running than the node has slots
        _assert_reserved_slots_exact(world)
        assert agent.used() <= slots, (op, agent.used())
    if world.services.jobs.get(ACCOUNT, job_id).body["state"] != "active":
        world.services.jobs.enable(ACCOUNT, job_id)
    for _ in range(200):   # drain: every task ends
        agent.take()
        agent.finish(0)
        agent.report()
        world.round.schedule()
        counts = world.counts(job_id)
        if counts["completed"] == len(ids) - len(deleted) and not agent.running and not agent.queue:
            break
    counts = world.counts(job_id)
    assert counts["active"] == 0 and counts["running"] == 0, counts
    assert counts["completed"] == len(ids) - len(deleted)
    assert counts["succeeded"] + counts["failed"] == counts["completed"]
    states = [_task(world, job_id, task_id)["state"] for task_id in ids if task_id not in deleted]
    assert set(states) == {"completed"}
    if not touched:   # nothing requeued: a task ran to its end at most once
        ends = [task_id for task_id, _ in agent.finished]
        assert all(ends.count(task_id) <= 1 for task_id in ids), ends
    with world.services.ctx.store.read() as conn:
        import sqlalchemy as sa

        from openbatch.store import schema

        nodes = schema.nodes
        used = conn.execute(sa.select(nodes.c.used_slots, nodes.c.running_tasks)
                            .where(nodes.c.pool_id_key == pool_id.lower())).one()
        job_pk = conn.execute(sa.select(schema.jobs.c.pk).where(schema.jobs.c.id == job_id)).scalar_one()
        reserved = conn.execute(sa.select(sa.func.count()).select_from(schema.tasks)
                                .where(schema.tasks.c.reserved_run_id.is_not(None),
                                       schema.tasks.c.job_pk == job_pk)).scalar_one()
    assert tuple(used) == (0, 0) and reserved == 0
    _assert_reserved_slots_exact(world)


def test_a_terminated_and_reactivated_task_is_not_completed_by_its_old_reserved_run(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)    # b starts from the queue ...
    agent.finish(0)    # ... and ends before the agent hears that b was terminated
    world.services.tasks.terminate(ACCOUNT, "j", "b")
    world.services.tasks.reactivate(ACCOUNT, "j", "b")
    agent.report()     # the old run's exit is not the reactivated task's
    assert _task(world, "j", "b")["state"] in ("active", "running")
    for _ in range(5):
        agent.take()
        agent.finish(0)
        agent.report()
        world.round.schedule()
    assert _task(world, "j", "b")["state"] == "completed"
    assert [task_id for task_id, _ in agent.finished].count("b") == 2   # the old run, and the new attempt


def test_a_start_and_exit_in_one_report_count_even_where_the_start_alone_would_be_cancelled(
        any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    agent.finish(0)   # b starts ...
    agent.finish(0)   # ... and ends
    with world.services.ctx.store.write() as conn:   # the node stops taking tasks, no cancel sent (the safety net)

        from openbatch.store import schema

        conn.execute(schema.nodes.update().values(scheduling_state="disabled"))
    agent.report()
    assert _task(world, "j", "b")["state"] == "completed"
    assert world.counts("j") == {"active": 0, "running": 0, "completed": 2, "succeeded": 2, "failed": 0}


def test_a_kill_lost_with_a_server_is_sent_again(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 1, "a", "b")
    world.services.jobs.disable(ACCOUNT, "j", decode({"disableTasks": "wait"}, JobDisableParameter))
    world.notes.take(agent.agent_id)   # the kill of b's reservation is lost
    identity = world.services.agents.authenticate(agent.agent_id, agent.credential)
    clock = world.services.ctx.now
    world.services.ctx.now = lambda: clock() + timedelta(minutes=2)
    try:
        queued = {run.id for run in agent.queue}
        world.services.agents.requeue_undelivered(identity, set(agent.running) | queued)
    finally:
        world.services.ctx.now = clock
    assert [command.id for command in world.notes.take(agent.agent_id) if isinstance(command, KillCommand)] \
        == sorted(queued)


def test_an_idle_node_takes_back_a_reservation_that_waits_behind_a_long_run(any_world: World) -> None:
    world = any_world
    world.pool("p", nodes=2, slots=1)
    agents = _hosts(world, "p", 1)
    world.job("j", "p")
    world.tasks("j", "long", "short", "waiting")
    world.round.schedule()
    for agent in agents:
        agent.take()
    holder = next(agent for agent in agents if agent.queue)   # "waiting" is reserved behind one of the two
    other = next(agent for agent in agents if agent is not holder)
    other.finish(0)
    other.report()     # the other node is idle now; the reservation is young: it stays
    holder.take()
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in holder.queue] == ["waiting"]
    clock = world.services.ctx.now
    world.services.ctx.now = lambda: clock() + timedelta(seconds=5)
    try:
        world.round.schedule()   # (the scheduler's sweep): taken back, two-phase
    finally:
        world.services.ctx.now = clock
    holder.take()
    assert holder.queue == [] and [event["type"] for event in holder.events] == ["unreserved"]
    holder.report()
    world.round.schedule()
    other.take()
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in other.running.values()] == ["waiting"]


def test_with_prefetch_turned_off_a_full_node_holds_no_reservations(any_world: World) -> None:
    world = any_world
    world.services.ctx.prefetch = False
    agent = _with_tasks(world, 2, "a", "b", "c")
    assert len(agent.running) == 2 and agent.queue == []
    assert world.counts("j")["active"] == 1
    agent.finish(0)
    agent.report()   # the exit's round places c on the freed slot, as without prefetch
    assert len(agent.running) == 2 and agent.queue == []
    assert world.counts("j") == {"active": 0, "running": 2, "completed": 1, "succeeded": 1, "failed": 0}


def test_a_task_wider_than_the_nodes_is_never_reserved_to_hold_up_their_queue(any_world: World) -> None:
    """A node holds several slots' worth of reservations, but each task must fit its slots."""
    world = any_world
    agent = _agent(world, "p", 4)
    world.job("j", "p")
    world.tasks("j", *[f"wide{i}" for i in range(3)], requiredSlots=5)
    world.tasks("j", "big0", "big1", requiredSlots=3)
    world.tasks("j", "small")
    world.round.schedule()
    agent.take()
    held = [run.environment["AZ_BATCH_TASK_ID"] for run in [*agent.running.values(), *agent.queue]]
    assert sorted(held) == ["big0", "big1", "small"]
    for _ in range(6):
        agent.finish(0)
        agent.report()
    assert world.counts("j") == {"active": 3, "running": 0, "completed": 3, "succeeded": 3, "failed": 0}


def test_a_job_that_comes_waits_behind_one_round_of_another_jobs_reservations(any_world: World) -> None:
    world = any_world
    agent = _with_tasks(world, 2, *[f"a{i:02d}" for i in range(2 + 2 * PREFETCH_DEPTH)])
    assert len(agent.queue) == 2 * PREFETCH_DEPTH   # one job: deep
    world.job("k", "p")
    world.tasks("k", "b0", "b1", "b2")   # its tasks cancel the deep part of the node's queue
    agent.take()
    agent.report()   # unreserved
    world.round.schedule()
    agent.take()
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.queue] == ["a02", "a03"]   # one round's worth
    order: list[str] = []
    for _ in range(40):
        agent.finish(0)
        agent.report()
        world.round.schedule()
        agent.take()
        order = [task for task, _ in agent.finished]
    assert {"b0", "b1", "b2"} <= set(order[:10]), order   # (one round of a, then turns)
    assert world.counts("j")["completed"] == 2 + 2 * PREFETCH_DEPTH and world.counts("k")["completed"] == 3


def test_a_task_add_reads_the_pools_queues_only_when_its_job_comes_beside_one_that_may_yield(
        any_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from openbatch.store import reservation_queries

    world = any_world
    reads: list[str] = []
    queues_of_pool = reservation_queries.queues_of_pool
    monkeypatch.setattr(reservation_queries, "queues_of_pool", lambda *a: reads.append("read") or queues_of_pool(*a))
    agent = _with_tasks(world, 2, *[f"a{i:02d}" for i in range(2 + 2 * PREFETCH_DEPTH)])   # j came alone
    world.tasks("j", "a99")   # j came already: its deep queue is not read again
    world.job("high", "p", priority=5)
    world.tasks("high", "h0")
    assert reads == ["read"]   # high comes, j is below it
    agent.take()
    agent.report()
    world.job("low", "p", priority=-1)
    world.tasks("low", "l0")   # low comes beside jobs that all rank above it
    world.job("same", "p")
    world.tasks("same", "s0")  # same comes beside j, of its priority
    assert reads == ["read", "read"]
    world.tasks("same", "s1")   # it came already: its pool's rounds serve it beside j since
    assert reads == ["read", "read"]


def _add(world: World, job_id: str, task_id: str) -> dict[str, Any]:
    """Task Add of one task (the call that places it in its own transaction when it can): what it answers."""
    from openbatch.domain.models import TaskAddParameter

    return world.services.tasks.add(ACCOUNT, job_id, decode({"id": task_id, "commandLine": "/bin/true"},
                                                            TaskAddParameter)).body


def test_a_higher_priority_task_added_to_a_full_pool_goes_ahead_of_the_lower_reservations(any_world: World) -> None:
    """Its round places nothing; the lower job's reservations yield, and the round runs again: the task
    is reserved in the same call, first in the node's queue once the agent has let the others go."""
    world = any_world
    agent = _with_tasks(world, 2, *[f"a{i:02d}" for i in range(2 + 2 * PREFETCH_DEPTH)])
    world.job("high", "p", priority=5)
    assert _add(world, "high", "h0")["state"] == "active"
    agent.take()   # the kills of j's reservations, and h0's run, reserved
    assert [run.environment["AZ_BATCH_TASK_ID"] for run in agent.queue] == ["h0"]
    agent.report()   # unreserved
    agent.finish(0)
    assert agent.started[-1][0] == "h0"


def test_a_task_added_and_placed_at_once_yields_nothing(any_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task its Task Add placed waits behind no reservation: whether any should yield is not even asked."""
    from openbatch.store import reservation_queries

    world = any_world
    reads: list[str] = []
    lowest = reservation_queries.lowest_priority_beside
    monkeypatch.setattr(reservation_queries, "lowest_priority_beside", lambda *a: reads.append("read") or lowest(*a))
    agent = _with_tasks(world, 2, "a0", "a1", "a2")   # a slot stays free after the first two
    agent.finish(0)
    agent.report()   # a2, reserved, takes the freed slot
    world.job("high", "p", priority=5)
    assert world.counts("j")["active"] == 0 and agent.used() == 2
    reads.clear()
    assert _add(world, "high", "h0")["state"] == "active"   # full: it waits, and asks
    assert reads == ["read"]
    agent.finish(0)
    agent.report()   # h0 (reserved, first in the queue) starts
    world.job("other", "p", priority=5)
    agent.finish(0)
    agent.report()
    reads.clear()
    assert agent.used() < agent.slots
    assert _add(world, "other", "o0")["state"] == "running"   # a slot was free: placed, nothing asked
    assert reads == []
