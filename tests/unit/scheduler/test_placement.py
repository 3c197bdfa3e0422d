"""Placement as a pure function: table tests over snapshots, no database, no processes."""

from __future__ import annotations

import pytest

from openbatch.scheduler.placement import Candidate, NodeCapacity, place


def nodes(*free: int) -> list[NodeCapacity]:
    return [NodeCapacity(pk=i + 1, free=f, affinity_id=f"n{i + 1}") for i, f in enumerate(free)]


def tasks(count: int, job: int = 1, slots: int = 1, prep: str = "none", start: int = 1) -> list[Candidate]:
    return [Candidate(task_pk=start + i, job_pk=job, slots=slots, prep=prep) for i in range(count)]  # type: ignore[arg-type]


def where(plan) -> list[int]:  # type: ignore[no-untyped-def]
    return [step.node_pk for step in plan]


@pytest.mark.parametrize(
    ("free", "fill", "count", "expected"),
    [
        ((4, 4), "spread", 4, [1, 2, 1, 2]),
        ((4, 4), "pack", 4, [1, 1, 1, 1]),
        ((4, 4), "pack", 6, [1, 1, 1, 1, 2, 2]),
        ((1, 3), "spread", 3, [2, 2, 1]),
        ((2, 1), "pack", 3, [2, 1, 1]),
        ((0, 0), "spread", 3, []),
        ((1,), "spread", 5, [1]),
    ],
)
def test_fill_types(free: tuple[int, ...], fill: str, count: int, expected: list[int]) -> None:
    assert where(place(tasks(count), nodes(*free), fill)) == expected  # type: ignore[arg-type]


def test_required_slots_must_fit_on_one_node() -> None:
    plan = place(tasks(3, slots=3), nodes(4, 2), "spread")
    assert where(plan) == [1]   # the second needs 3 free slots: node 1 has 1 left, node 2 has 2


def test_a_big_task_does_not_block_smaller_ones_behind_it() -> None:
    plan = place([Candidate(1, 1, slots=5), Candidate(2, 1, slots=1)], nodes(4), "spread")
    assert [s.task_pk for s in plan] == [2]


def test_order_is_kept_across_jobs() -> None:
    high, low = tasks(2, job=1, start=1), tasks(2, job=2, start=10)
    plan = place(high + low, nodes(3), "spread")
    assert [s.task_pk for s in plan] == [1, 2, 10]


def test_max_parallel_tasks_caps_a_job() -> None:
    plan = place(tasks(5, job=1) + tasks(2, job=2, start=10), nodes(8), "spread", {1: 2, 2: None})
    assert [s.task_pk for s in plan] == [1, 2, 10, 11]
    assert place(tasks(3), nodes(4), "spread", {1: 0}) == []


def test_affinity_is_preferred_when_it_fits() -> None:
    plan = place([Candidate(1, 1, affinity_id="n2"), Candidate(2, 1, affinity_id="n9")], nodes(4, 1), "spread")
    assert where(plan) == [2, 1]


def test_preparation_starts_once_per_job_and_node_when_all_slots_fill_at_once() -> None:
    plan = place(tasks(8, prep="wait"), nodes(8), "pack")
    assert [s.start_preparation for s in plan] == [True] + [False] * 7
    assert all(s.wait_for_preparation for s in plan)


def test_preparation_per_node_and_per_job() -> None:
    plan = place(tasks(2, job=1, prep="wait") + tasks(2, job=2, prep="wait", start=10), nodes(2, 2), "spread")
    starts = {(s.job_pk, s.node_pk) for s in plan if s.start_preparation}
    assert starts == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_prepared_nodes_run_at_once_and_running_preparations_are_not_repeated() -> None:
    prepared = NodeCapacity(1, 2, prepared=frozenset({1}))
    preparing = NodeCapacity(2, 2, preparing={1})
    plan = place(tasks(4, prep="wait"), [prepared, preparing], "spread")
    assert not any(s.start_preparation for s in plan)
    assert {(s.node_pk, s.wait_for_preparation) for s in plan} == {(1, False), (2, True)}


def test_failed_preparation_excludes_the_node_for_that_job_only() -> None:
    failed = NodeCapacity(1, 4, excluded=frozenset({1}))
    other = NodeCapacity(2, 1)
    plan = place(tasks(2, job=1, prep="wait") + tasks(1, job=2, start=10), [failed, other], "spread")
    assert {(s.task_pk, s.node_pk) for s in plan} == {(1, 2), (10, 1)}


def test_without_wait_for_success_tasks_run_alongside_the_preparation() -> None:
    plan = place(tasks(2, prep="nowait"), nodes(2), "pack")
    assert [(s.start_preparation, s.wait_for_preparation) for s in plan] == [(True, False), (False, False)]
    failed = NodeCapacity(1, 2, excluded=frozenset({1}))
    again = place(tasks(1, prep="nowait"), [failed], "pack")
    assert [(s.node_pk, s.start_preparation) for s in again] == [(1, False)]


def test_nodes_reflect_the_plan() -> None:
    pool = nodes(3, 3)
    place(tasks(4), pool, "pack")
    assert [n.free for n in pool] == [0, 2]


def test_a_node_whose_allocation_ends_takes_only_what_can_finish() -> None:
    ending = NodeCapacity(pk=1, free=4, seconds_left=600.0)
    plan = place([Candidate(1, 1, wall_clock=900.0), Candidate(2, 1, wall_clock=300.0), Candidate(3, 1)], [ending])
    assert [p.task_pk for p in plan] == [2, 3]   # 15 min does not fit in 10; no limit fits while > 1 min is left
    draining = NodeCapacity(pk=2, free=4, seconds_left=30.0)
    plan = place([Candidate(4, 1), Candidate(5, 1, wall_clock=20.0)], [draining])
    assert [p.task_pk for p in plan] == [5]   # under a minute left: only a task known to finish
    forever = NodeCapacity(pk=3, free=1)
    assert [p.node_pk for p in place([Candidate(6, 1, wall_clock=1e9)], [draining, forever])] == [3]


def test_a_job_manager_kept_off_low_priority_nodes_waits_for_a_dedicated_one() -> None:
    spot = [NodeCapacity(pk=1, free=4, dedicated=False), NodeCapacity(pk=2, free=1)]
    manager = Candidate(task_pk=1, job_pk=1, dedicated_only=True)
    assert where(place([manager, *tasks(2, start=2)], spot)) == [2, 1, 1]
    assert place([manager], [NodeCapacity(pk=1, free=4, dedicated=False)]) == []


# -- multi-instance tasks -------------------------------------------------------------------------


def test_a_multi_instance_task_takes_distinct_nodes_or_none() -> None:
    pool = nodes(1, 1, 1)
    plan = place([Candidate(task_pk=1, job_pk=1, instances=3)], pool)
    assert [(step.node_pk, step.others) for step in plan] == [(1, (2, 3))]
    assert [node.free for node in pool] == [0, 0, 0]

    pool = nodes(1, 0, 1)   # two nodes with room: it waits, and takes nothing
    plan = place([Candidate(task_pk=1, job_pk=1, instances=3), *tasks(1, start=2)], pool)
    assert [(step.task_pk, step.node_pk, step.others) for step in plan] == [(2, 1, None)]
    assert [node.free for node in pool] == [0, 0, 1]


def test_a_multi_instance_task_never_takes_one_node_twice() -> None:
    assert place([Candidate(task_pk=1, job_pk=1, instances=2)], nodes(4)) == []


def test_a_multi_instance_task_counts_once_against_max_parallel_tasks() -> None:
    plan = place([Candidate(task_pk=1, job_pk=1, instances=2), *tasks(2, start=2)], nodes(1, 1, 1, 1), job_room={1: 2})
    assert [(step.task_pk, len(step.others or ())) for step in plan] == [(1, 1), (2, 0)]


def test_a_multi_instance_task_of_one_instance_is_still_one() -> None:
    plan = place([Candidate(task_pk=1, job_pk=1, instances=1)], nodes(1))
    assert [(step.node_pk, step.others) for step in plan] == [(1, ())]


def test_a_multi_instance_task_waits_for_its_jobs_preparation_on_enough_nodes() -> None:
    pool = nodes(1, 1, 1)
    pool[0].prepared = frozenset({1})
    pool[1].preparing.add(1)   # on its way here: one more is started, not two
    plan = place([Candidate(task_pk=7, job_pk=1, prep="wait", instances=3)], pool)
    assert [(step.node_pk, step.prepare_only, step.start_preparation) for step in plan] == [(3, True, True)]
    assert [node.free for node in pool] == [1, 1, 1]   # nothing taken while it waits
    for node in pool:
        node.prepared, node.preparing = frozenset({1}), set()
    plan = place([Candidate(task_pk=7, job_pk=1, prep="wait", instances=3)], pool)
    assert [(step.node_pk, step.others, step.prepare_only) for step in plan] == [(1, (2, 3), False)]
