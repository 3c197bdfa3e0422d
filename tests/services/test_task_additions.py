"""Adding tasks from many threads at once, on both stores: on PostgreSQL additions run alongside each
other (a shared writer lock), so the same ids added at once must still give one task each."""

from __future__ import annotations

import threading

import pytest

from openbatch.domain.models import TaskAddParameter, decode
from openbatch.domain.quotas import Quotas
from openbatch.scheduler.round import SchedulingRound
from openbatch.services import Services
from openbatch.store.engine import Store

from .conftest import ACCOUNT, Recorder, World


@pytest.fixture
def any_world(any_store: Store) -> World:
    services = Services.create(any_store, node_provider=True, quotas=Quotas(dedicated_cores=8, pools=5, active_jobs=5))
    services.ctx.notifier = Recorder()
    scheduling = SchedulingRound(services.ctx)
    services.ctx.schedule_in = scheduling.schedule_pool_in
    return World(services, services.ctx.notifier, scheduling)  # type: ignore[arg-type]


def test_the_same_ids_added_at_once_give_one_task_each_and_exact_counts(any_world: World) -> None:
    any_world.pool("p", 1)
    any_world.job("j", "p")
    ids = [f"t{i}" for i in range(60)]
    outcomes: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def add(offset: int) -> None:
        # Each thread adds every id, from its own starting point, in batches of 20.
        order = ids[offset:] + ids[:offset]
        for start in range(0, len(order), 20):
            batch = [decode({"id": task_id, "commandLine": "/bin/true"}, TaskAddParameter)
                     for task_id in order[start:start + 20]]
            added = any_world.services.tasks.add_collection(ACCOUNT, "j", batch)
            with lock:
                outcomes.extend((o.task_id, o.error.code if o.error else None) for o in added)

    threads = [threading.Thread(target=add, args=(offset,)) for offset in (0, 7, 20, 33, 41, 59)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    successes = sorted(task_id for task_id, code in outcomes if code is None)
    assert successes == sorted(ids)
    assert {code for _, code in outcomes} == {None, "TaskExists"}
    assert len(outcomes) == 6 * len(ids)
    assert any_world.counts("j")["active"] == len(ids)


def test_a_task_added_alone_to_a_pool_with_room_is_placed_in_the_same_transaction(any_world: World) -> None:
    from openbatch.protocol import RunCommand

    world = any_world
    world.pool("p", nodes=1, slots=1)
    agent_id, _ = world.host("p")
    world.job("j", "p")
    wakes = world.notes.wakes

    def add(task_id: str) -> list[str]:
        record = world.services.tasks.add(ACCOUNT, "j", decode({"id": task_id, "commandLine": "/bin/true"},
                                                               TaskAddParameter))
        stored = world.services.tasks.get(ACCOUNT, "j", task_id)
        assert (record.etag, record.body["state"]) == (stored.etag, stored.body["state"])  # what is stored now
        return [c.environment["AZ_BATCH_TASK_ID"] for c in world.notes.take(agent_id)
                if isinstance(c, RunCommand) and not c.reserved]

    assert add("a") == ["a"]                  # no scheduler round ran: the add placed it
    assert world.counts("j")["running"] == 1
    assert world.notes.wakes == wakes         # the pool is full now: nothing left for the scheduler
    assert add("b") == []                     # no room: it waits for a slot (whose report places it)
    assert world.counts("j") == {"active": 1, "running": 1, "completed": 0, "succeeded": 0, "failed": 0}
    assert world.notes.wakes == wakes


def test_without_a_scheduler_an_added_task_wakes_one(world: World) -> None:
    from openbatch.services.context import no_round

    world.services.ctx.schedule_in = no_round   # (a context whose scheduler is not installed)
    world.pool("p", nodes=1, slots=1)
    world.host("p")
    world.job("j", "p")
    wakes = world.notes.wakes
    world.services.tasks.add(ACCOUNT, "j", decode({"id": "a", "commandLine": "/bin/true"}, TaskAddParameter))
    assert world.counts("j")["active"] == 1 and world.notes.wakes == wakes + 1


def test_a_placing_add_whose_round_read_every_candidate_leaves_the_scheduler_asleep(any_world: World) -> None:
    world = any_world
    world.pool("p", nodes=1, slots=4)
    world.host("p")
    world.job("j", "p")
    wakes = world.notes.wakes
    world.services.tasks.add(ACCOUNT, "j", decode({"id": "a", "commandLine": "/bin/true"}, TaskAddParameter))
    assert world.counts("j")["running"] == 1
    assert world.notes.wakes == wakes          # slots are left, but a round would find nothing more
    after = world.round.schedule()
    assert (after.placed, after.again) == (0, False)


def test_a_round_that_left_candidates_unread_asks_for_another(any_world: World) -> None:
    """maxParallelTasks turns the first job's candidates away after one: the round read no further than its
    look-ahead, so the other job's tasks wait for the next round, which the first asks for."""
    world = any_world
    world.pool("p", nodes=1, slots=4)
    world.host("p")
    world.job("capped", "p", priority=100, maxParallelTasks=1)
    world.job("other", "p")
    for start in (0, 100, 200):   # more than the round looks ahead (free and reservable slots x LOOKAHEAD)
        world.tasks("capped", *[f"c{i}" for i in range(start, start + 100)])
    world.tasks("other", *[f"o{i}" for i in range(5)])
    first = world.round.schedule()
    assert (first.placed, first.again) == (1, True)
    second = world.round.schedule()
    assert (second.placed, second.again) == (3, False)
    assert world.counts("capped")["running"] == 1 and world.counts("other")["running"] == 3


@pytest.mark.parametrize("room", [True, False], ids=["placed-at-once", "waiting"])
def test_a_task_added_alone_with_a_taken_id_is_refused_and_changes_nothing(any_world: World, room: bool) -> None:
    """A single add does not look for its id first: the job's unique key refuses it, whether the task would
    have been placed at once or would wait (ids are case-insensitive), and nothing of the attempt stays."""
    from openbatch.domain.errors import BatchError

    world = any_world
    world.pool("p", nodes=1, slots=2 if room else 1)   # (room: a slot stays free for the second add)
    agent_id, _ = world.host("p")
    world.job("j", "p")
    if not room:
        world.tasks("j", "busy")
    world.services.tasks.add(ACCOUNT, "j", decode({"id": "Task", "commandLine": "/bin/true"}, TaskAddParameter))
    counts, commands, nodes = world.counts("j"), world.notes.take(agent_id), _node_bodies(world)
    for task_id in ("Task", "TASK", "task"):
        with pytest.raises(BatchError) as refused:
            world.services.tasks.add(ACCOUNT, "j", decode({"id": task_id, "commandLine": "/bin/false"},
                                                          TaskAddParameter))
        assert refused.value.code == "TaskExists"
    assert world.counts("j") == counts
    assert world.notes.take(agent_id) == [] and commands
    assert world.services.tasks.get(ACCOUNT, "j", "task").body["commandLine"] == "/bin/true"
    assert _node_bodies(world) == nodes


def _node_bodies(world: World) -> list[dict]:
    from openbatch.services.context import ListQuery

    page, _ = world.services.nodes.list(ACCOUNT, "p", ListQuery())
    return [record.body for record in page.records]


def test_the_same_id_added_alone_at_once_gives_one_task(any_world: World) -> None:
    world = any_world
    world.pool("p", nodes=1, slots=2)
    world.host("p")
    world.job("j", "p")
    codes: list[str | None] = []
    lock = threading.Lock()

    def add() -> None:
        try:
            world.services.tasks.add(ACCOUNT, "j", decode({"id": "once", "commandLine": "/bin/true"},
                                                          TaskAddParameter))
            code = None
        except Exception as error:  # noqa: BLE001 - the code is the assertion
            code = getattr(error, "code", repr(error))
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes, key=str) == [None] + ["TaskExists"] * 5
    counts = world.counts("j")
    assert counts["active"] + counts["running"] == 1
