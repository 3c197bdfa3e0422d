"""How deep nodes reserve, and which reservations a job that comes should not wait behind."""

from dataclasses import dataclass

from openbatch.domain.reservations import PREFETCH_DEPTH, depth_for, may_yield, reservable, to_yield


@dataclass
class Held:
    task_pk: int
    job_pk: int
    node_pk: int
    slots: int
    node_slots: int
    priority: int = 0


def test_deep_while_one_job_is_served_one_round_beside_others() -> None:
    assert depth_for(0) == depth_for(1) == PREFETCH_DEPTH
    assert depth_for(2) == 1
    assert reservable(4, 3) == 4 * PREFETCH_DEPTH - 3
    assert reservable(4, 3, depth=1) == 1
    assert reservable(4, 9, depth=1) == 0


def test_a_node_queue_keeps_its_first_slots_worth_and_the_coming_jobs_own() -> None:
    held = [Held(1, 10, 100, 1, 2), Held(2, 10, 100, 1, 2), Held(3, 10, 100, 1, 2), Held(4, 20, 100, 1, 2),
            Held(5, 10, 100, 1, 2), Held(6, 10, 200, 2, 2), Held(7, 10, 200, 1, 2), Held(8, 10, 300, 1, 4)]
    assert [h.task_pk for h in to_yield(held, job_pk=20, priority=0)] == [3, 5, 7]
    assert [h.task_pk for h in to_yield(held, job_pk=10, priority=0)] == [4]
    assert to_yield([], job_pk=10, priority=0) == []


def test_every_reservation_of_a_lower_priority_job_yields_none_of_a_higher_one() -> None:
    held = [Held(1, 10, 100, 1, 2, priority=-5), Held(2, 11, 100, 1, 2, priority=0), Held(3, 12, 100, 1, 2, priority=9),
            Held(4, 12, 100, 1, 2, priority=9)]
    assert [h.task_pk for h in to_yield(held, job_pk=20, priority=0)] == [1]
    assert [h.task_pk for h in to_yield(held, job_pk=20, priority=10)] == [1, 2, 3, 4]
    assert [h.task_pk for h in to_yield(held, job_pk=20, priority=9)] == [1, 2, 3, 4]   # 3, 4: past the first round


def test_the_queues_are_read_only_where_a_job_of_its_priority_or_lower_is_beside_it() -> None:
    assert not may_yield(None, 0)   # the pool serves it alone
    assert not may_yield(1, 0)      # the others all rank above it
    assert may_yield(0, 0) and may_yield(-3, 0)
    for lowest in (-5, 0, 9):       # where it says no, to_yield finds nothing either
        held = [Held(1, 10, 100, 1, 2, priority=lowest), Held(2, 10, 100, 1, 2, priority=lowest + 1),
                Held(3, 10, 100, 1, 2, priority=lowest + 1)]
        for priority in (-6, 0, 8):
            assert may_yield(lowest, priority) or to_yield(held, job_pk=20, priority=priority) == []
