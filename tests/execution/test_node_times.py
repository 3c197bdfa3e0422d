"""Times are the node's: a run's startTime and endTime are when its process really started and ended,
measured by the agent, not when the server planned it or applied a batch of reports."""

from __future__ import annotations

from datetime import timedelta

from azure.batch import BatchClient
from azure.batch.models._models import BatchJobTerminateOptions

from tests.execution.conftest import wait_for
from tests.execution.test_prep_release_nodes import Pools, add_job, add_tasks, pools, sh, status  # noqa: F401


def test_task_times_span_the_process(batch: BatchClient, pools: Pools) -> None:  # noqa: F811
    pool_id, _ = pools.add(1, slots=4)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {f"t{i}": sh(f"sleep 0.{i + 3}") for i in range(4)})
    wait_for(lambda: all(t.state == "completed" for t in batch.list_tasks(job_id)), message="all completed")
    tasks = {t.id: t.execution_info for t in batch.list_tasks(job_id)}
    for i in range(4):
        info = tasks[f"t{i}"]
        ran = info.end_time - info.start_time
        assert timedelta(seconds=0.28 + i / 10) <= ran < timedelta(seconds=2), (f"t{i}", ran)
    ends = [info.end_time for info in tasks.values()]
    assert len(set(ends)) == 4, ends   # each its own, even when their exits were reported together


def test_preparation_and_release_times_are_distinct_and_ordered_per_node(batch: BatchClient,
                                                                          pools: Pools) -> None:  # noqa: F811
    pool_id, nodes = pools.add(2)
    # (each node's preparation sleeps a little more, at random: two processes of different agents that end
    # at the same moment may read the same microsecond, and then their times are rightly equal)
    job_id = add_job(batch, pool_id, prep=sh("sleep 0.3; sleep 0.0$(od -An -N2 -tu2 /dev/urandom | tr -d \" \")"),
                     release=sh("sleep 0.2"))
    add_tasks(batch, job_id, {"a": sh("sleep 0.5"), "b": sh("sleep 0.5")})
    wait_for(lambda: all(t.state == "completed" for t in batch.list_tasks(job_id)), message="tasks completed")
    batch.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason="done"), polling_interval=0)
    wait_for(lambda: batch.get_job(job_id).state == "completed", message="job completed after its releases")
    entries = status(batch, job_id)
    assert sorted(entries) == nodes
    prep_ends = []
    for node_id, entry in entries.items():
        prep, release = entry.job_preparation_task_execution_info, entry.job_release_task_execution_info
        # (the start is read just after the process was spawned: a few ms into its sleep)
        assert prep.end_time - prep.start_time >= timedelta(seconds=0.28), node_id
        assert release.end_time - release.start_time >= timedelta(seconds=0.18), node_id
        assert prep.end_time <= release.start_time, node_id
        prep_ends.append(prep.end_time)
    assert len(set(prep_ends)) == 2, {node_id: (entry.job_preparation_task_execution_info.start_time,  # each its own
                                               entry.job_preparation_task_execution_info.end_time,
                                               entry.job_release_task_execution_info.start_time)
                                     for node_id, entry in entries.items()}
    for task in batch.list_tasks(job_id):   # each task ran after its node's preparation ended
        assert task.execution_info.start_time >= entries[task.node_info.node_id] \
            .job_preparation_task_execution_info.end_time
