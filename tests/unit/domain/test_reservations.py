"""How deep nodes reserve, and which reservations a job that comes should not wait behind."""

from openbatch.domain.reservations import PREFETCH_DEPTH, beyond_one_round, depth_for, reservable


def test_deep_while_one_job_is_served_one_round_beside_others() -> None:
    assert depth_for(0) == depth_for(1) == PREFETCH_DEPTH
    assert depth_for(2) == 1
    assert reservable(4, 3) == 4 * PREFETCH_DEPTH - 3
    assert reservable(4, 3, depth=1) == 1
    assert reservable(4, 9, depth=1) == 0


def test_a_node_queue_keeps_its_first_slots_worth_and_the_coming_jobs_own() -> None:
    # (task, job, node, slots it takes, node's slots), in queue order per node
    held = [(1, 10, 100, 1, 2), (2, 10, 100, 1, 2), (3, 10, 100, 1, 2), (4, 20, 100, 1, 2), (5, 10, 100, 1, 2),
            (6, 10, 200, 2, 2), (7, 10, 200, 1, 2),
            (8, 10, 300, 1, 4)]
    assert beyond_one_round(held, job_pk=20) == [3, 5, 7]
    assert beyond_one_round(held, job_pk=10) == [4]
    assert beyond_one_round([], job_pk=10) == []
