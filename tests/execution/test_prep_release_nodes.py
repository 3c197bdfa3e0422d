"""Job preparation and release, pools and nodes, start tasks, job disable and agent loss, on real local nodes.

Everything goes through the official azure-batch 15.1 client against ``live_nodes`` (a server
whose pools get one agent process per node, on SQLite and on PostgreSQL). Each test makes its
own pool (deleted at teardown, without waiting) and its own jobs.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.exceptions import ResourceNotFoundError

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.live import LiveServer

PREP_DIR = "workitems/{job}/job-1/jobpreparation"


def _image() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy",
                                                sku="22_04-lts"),
        node_agent_sku_id="batch.node.ubuntu 22.04")


def sh(script: str) -> str:
    """A command line running ``script`` under /bin/sh (the command line itself is not run by a shell)."""
    assert "'" not in script
    return f"/bin/sh -c '{script}'"


class Pools:
    """Makes pools for one test and deletes them when it ends."""

    def __init__(self, batch: BatchClient) -> None:
        self.batch = batch
        self.ids: list[str] = []

    def add(self, nodes: int, slots: int = 1, *, start_task: m.BatchStartTask | None = None,
            wait_idle: bool = True) -> tuple[str, list[str]]:
        pool_id = uid("pool")
        self.ids.append(pool_id)
        self.batch.create_pool(m.BatchPoolCreateOptions(
            id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_image(),
            target_dedicated_nodes=nodes, task_slots_per_node=slots, start_task=start_task))
        if not wait_idle:
            return pool_id, []
        return pool_id, idle_nodes(self.batch, pool_id, nodes)

    def cleanup(self) -> None:
        for pool_id in self.ids:
            try:
                self.batch.begin_delete_pool(pool_id, polling_interval=1)
            except ResourceNotFoundError:
                pass


@pytest.fixture
def pools(batch: BatchClient) -> Iterator[Pools]:
    made = Pools(batch)
    yield made
    made.cleanup()


def idle_nodes(batch: BatchClient, pool_id: str, count: int, timeout: float = 30) -> list[str]:
    def ready() -> list[str] | None:
        nodes = list(batch.list_nodes(pool_id))
        if len(nodes) == count and all(n.state == "idle" for n in nodes):
            return sorted(n.id for n in nodes)
        return None

    return wait_for(ready, timeout, message=f"{count} idle nodes in {pool_id}")


def add_job(batch: BatchClient, pool_id: str, *, prep: str | None = None, release: str | None = None,
            wait_for_success: bool = True, prep_retries: int | None = None,
            release_wall_clock: timedelta | None = None, **options: object) -> str:
    job_id = uid("job")
    prep_task = None
    if prep is not None:
        constraints = m.BatchTaskConstraints(max_task_retry_count=prep_retries) if prep_retries is not None else None
        prep_task = m.BatchJobPreparationTask(command_line=prep, wait_for_success=wait_for_success,
                                              constraints=constraints)
    release_task = None
    if release is not None:
        release_task = m.BatchJobReleaseTask(command_line=release, max_wall_clock_time=release_wall_clock)
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id),
                                             job_preparation_task=prep_task, job_release_task=release_task,
                                             **options))
    return job_id


def add_tasks(batch: BatchClient, job_id: str, commands: dict[str, str], env: dict[str, str] | None = None) -> None:
    settings = [m.EnvironmentSetting(name=k, value=v) for k, v in (env or {}).items()] or None
    result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=task_id, command_line=command, environment_settings=settings)
        for task_id, command in commands.items()]))
    assert all(r.status == "success" for r in result.result_values), result


def task_states(batch: BatchClient, job_id: str) -> dict[str, str]:
    return {t.id: t.state for t in batch.list_tasks(job_id)}


def all_completed(batch: BatchClient, job_id: str, count: int) -> bool:
    return batch.get_job_task_counts(job_id).task_counts.completed == count


def counts(batch: BatchClient, job_id: str) -> tuple[int, int, int, int, int]:
    c = batch.get_job_task_counts(job_id).task_counts
    return c.active, c.running, c.completed, c.succeeded, c.failed


def status(batch: BatchClient, job_id: str) -> dict[str, m.BatchJobPreparationAndReleaseTaskStatus]:
    return {e.node_id: e for e in batch.list_job_preparation_and_release_task_status(job_id)}


def node_file(batch: BatchClient, pool_id: str, node_id: str, path: str) -> str:
    return b"".join(batch.download_node_file(pool_id, node_id, path)).decode()


def job_gone(batch: BatchClient, job_id: str) -> bool:
    try:
        batch.get_job(job_id)
    except ResourceNotFoundError:
        return True
    return False


def terminate(batch: BatchClient, job_id: str, reason: str = "done"):  # type: ignore[no-untyped-def]
    return batch.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason=reason), polling_interval=1)


# -- 1. preparation exactly once per (job, node) ---------------------------------------------------


def test_preparation_runs_once_when_all_slots_fill_at_once(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1, slots=8)
    job_id = add_job(batch, pool_id, prep=sh('echo prep >> "$AZ_BATCH_NODE_SHARED_DIR/prep-count"; '
                                             'echo prepared $AZ_BATCH_JOB_ID; sleep 1'))
    add_tasks(batch, job_id, {f"t{i}": sh(f"echo task {i}") for i in range(8)})

    seen_preparing = wait_for(lambda: "preparing" in task_states(batch, job_id).values(), 10,
                              message="a task in state preparing while the preparation task runs")
    assert seen_preparing
    wait_for(lambda: all_completed(batch, job_id, 8), message="8 completed tasks")

    assert node_file(batch, pool_id, node_id, "shared/prep-count") == "prep\n"
    entries = status(batch, job_id)
    assert list(entries) == [node_id]
    entry = entries[node_id]
    assert entry.pool_id == pool_id
    prep = entry.job_preparation_task_execution_info
    assert (prep.state, prep.retry_count, prep.exit_code, prep.result) == ("completed", 0, 0, "success")
    assert prep.failure_info is None and prep.last_retry_time is None
    assert prep.task_root_directory == PREP_DIR.format(job=job_id)
    assert prep.task_root_directory_url.endswith(f"/pools/{pool_id}/nodes/{node_id}/files/{prep.task_root_directory}")
    assert node_file(batch, pool_id, node_id, f"{prep.task_root_directory}/stdout.txt") == f"prepared {job_id}\n"
    assert entry.job_release_task_execution_info is None
    for task in batch.list_tasks(job_id):
        assert task.node_info.node_id == node_id
        assert task.execution_info.start_time >= prep.end_time, (task.id, task.execution_info.start_time, prep.end_time)
        assert task.execution_info.result == "success"
    assert counts(batch, job_id) == (0, 0, 8, 8, 0)


# -- 2, 3. waitForSuccess ----------------------------------------------------------------------------


def test_failed_preparation_keeps_the_jobs_tasks_off_the_node(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh('echo try >> "$AZ_BATCH_NODE_SHARED_DIR/prep-tries"; exit 1'),
                     prep_retries=1)
    add_tasks(batch, job_id, {"a": sh("echo a"), "b": sh("echo b")})

    def prep_done() -> m.BatchJobPreparationTaskExecutionInfo | None:
        entry = status(batch, job_id).get(node_id)
        info = entry.job_preparation_task_execution_info if entry else None
        return info if info is not None and info.state == "completed" else None

    prep = wait_for(prep_done, message="the preparation task to complete")
    assert (prep.retry_count, prep.result, prep.exit_code) == (1, "failure", 1)
    assert prep.failure_info is not None and prep.failure_info.category == "usererror"
    assert prep.last_retry_time is not None
    wait_for(lambda: set(task_states(batch, job_id).values()) == {"active"}, 10,
             message="the job's tasks back to active")

    # The node stays usable: another job's task runs there.
    other = add_job(batch, pool_id)
    add_tasks(batch, other, {"x": sh("echo x")})
    wait_for(lambda: all_completed(batch, other, 1), message="the other job's task")
    assert batch.get_task(other, "x").node_info.node_id == node_id
    assert batch.get_node(pool_id, node_id).state == "idle"

    # ... while this job's tasks never ran there, and the preparation was not tried again.
    assert set(task_states(batch, job_id).values()) == {"active"}
    assert counts(batch, job_id) == (2, 0, 0, 0, 0)
    assert node_file(batch, pool_id, node_id, "shared/prep-tries") == "try\ntry\n"
    for task in batch.list_tasks(job_id):
        assert task.execution_info is None or task.execution_info.start_time is None


def test_tasks_run_when_preparation_without_wait_fails(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh('echo try >> "$AZ_BATCH_NODE_SHARED_DIR/prep-tries"; exit 1'),
                     wait_for_success=False)
    add_tasks(batch, job_id, {f"t{i}": sh("sleep 0.2") for i in range(3)})
    wait_for(lambda: all_completed(batch, job_id, 3), 15,
             message="3 completed tasks despite the failed preparation: with waitForSuccess false a failed "
                     "preparation must not keep the job's tasks off the node (the scheduler must skip a job "
                     "whose preparation failed on every node only when waitForSuccess is true)")
    assert counts(batch, job_id) == (0, 0, 3, 3, 0)
    prep = status(batch, job_id)[node_id].job_preparation_task_execution_info
    assert (prep.state, prep.result, prep.exit_code, prep.retry_count) == ("completed", "failure", 1, 0)
    # Once per (job, node), also when it failed and later tasks of the job ran there.
    assert node_file(batch, pool_id, node_id, "shared/prep-tries") == "try\n"


# -- 4. release tasks --------------------------------------------------------------------------------

MARK_RELEASE = 'echo released >> "$AZ_BATCH_NODE_SHARED_DIR/release-$AZ_BATCH_JOB_ID"'


def test_terminate_runs_release_on_every_prepared_node(batch: BatchClient, pools: Pools) -> None:
    pool_id, nodes = pools.add(2)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh(f"sleep 2; {MARK_RELEASE}"))
    add_tasks(batch, job_id, {"a": sh("sleep 1"), "b": sh("sleep 1")})
    wait_for(lambda: all_completed(batch, job_id, 2), message="2 completed tasks")
    assert {batch.get_task(job_id, t).node_info.node_id for t in ("a", "b")} == set(nodes)
    assert sorted(status(batch, job_id)) == nodes

    poller = terminate(batch, job_id)
    assert batch.get_job(job_id).state == "terminating"
    running = status(batch, job_id)
    assert all(e.job_release_task_execution_info.state == "running" for e in running.values())
    poller.result(timeout=30)
    job = batch.get_job(job_id)
    assert job.state == "completed" and job.execution_info.termination_reason == "done"
    entries = status(batch, job_id)
    assert sorted(entries) == nodes
    for node_id, entry in entries.items():
        release = entry.job_release_task_execution_info
        assert (release.state, release.exit_code, release.result) == ("completed", 0, "success")
        assert release.task_root_directory == f"workitems/{job_id}/job-1/jobrelease"
        assert release.end_time <= job.execution_info.end_time
        assert node_file(batch, pool_id, node_id, f"shared/release-{job_id}") == "released\n"


def test_all_tasks_complete_terminates_the_job_and_runs_release(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh(MARK_RELEASE))
    add_tasks(batch, job_id, {"a": sh("sleep 0.5")})
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    wait_for(lambda: batch.get_job(job_id).state == "completed", message="the job to complete")
    assert batch.get_job(job_id).execution_info.termination_reason == "AllTasksComplete"
    release = status(batch, job_id)[node_id].job_release_task_execution_info
    assert (release.state, release.result) == ("completed", "success")
    assert node_file(batch, pool_id, node_id, f"shared/release-{job_id}") == "released\n"


def test_delete_from_active_runs_release_then_removes_the_job(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh(f"sleep 1; {MARK_RELEASE}"))
    add_tasks(batch, job_id, {"a": sh("echo a")})
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task")
    batch.begin_delete_job(job_id, polling_interval=1)
    assert batch.get_job(job_id).state == "deleting"
    wait_for(lambda: job_gone(batch, job_id), message="the job to disappear")
    assert node_file(batch, pool_id, node_id, f"shared/release-{job_id}") == "released\n"


def test_terminated_then_deleted_job_runs_release_once(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh(MARK_RELEASE))
    add_tasks(batch, job_id, {"a": sh("echo a")})
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task")
    terminate(batch, job_id).result(timeout=30)
    assert batch.get_job(job_id).state == "completed"
    batch.begin_delete_job(job_id, polling_interval=1).result(timeout=30)
    assert job_gone(batch, job_id)
    # Release tasks of a deleted job would have started at once: the file is read after that could happen.
    assert node_file(batch, pool_id, node_id, f"shared/release-{job_id}") == "released\n"


# -- 5. release maxWallClockTime ---------------------------------------------------------------------


def test_release_wall_clock_limit_kills_it_and_the_job_completes(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh("sleep 30"),
                     release_wall_clock=timedelta(seconds=1))
    assert batch.get_job(job_id).job_release_task.max_wall_clock_time == timedelta(seconds=1)
    add_tasks(batch, job_id, {"a": sh("echo a")})
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task")
    started = time.monotonic()
    terminate(batch, job_id).result(timeout=30)
    assert time.monotonic() - started < 15
    assert batch.get_job(job_id).state == "completed"
    release = status(batch, job_id)[node_id].job_release_task_execution_info
    assert (release.state, release.result) == ("completed", "failure")
    assert release.failure_info is not None and release.failure_info.code == "MaxWallClockTimeExpiry"


# -- 6. status of removed nodes ------------------------------------------------------------------------


def test_status_keeps_nodes_removed_from_the_pool(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id, prep=sh("echo prep"), release=sh("echo release"))
    add_tasks(batch, job_id, {"a": sh("echo a")})
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task")
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0),
                            polling_interval=1).result(timeout=30)
    wait_for(lambda: not list(batch.list_nodes(pool_id)), message="the node to leave the pool")
    entries = status(batch, job_id)
    assert list(entries) == [node_id]
    prep = entries[node_id].job_preparation_task_execution_info
    assert (prep.state, prep.result) == ("completed", "success")
    # The node is gone: no release task is owed there, so the job completes at once.
    terminate(batch, job_id).result(timeout=30)
    assert batch.get_job(job_id).state == "completed"
    assert list(status(batch, job_id)) == [node_id]


# -- 7. agent loss ---------------------------------------------------------------------------------------


def _runs(log: Path) -> list[tuple[str, str, str, float]]:
    """(event, task, node, time) lines the tasks wrote."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        event, task, node, stamp = line.split()
        out.append((event, task, node, float(stamp)))
    return out


def test_lost_agent_requeues_its_task_and_its_node_comes_back(
        batch: BatchClient, pools: Pools, live_nodes: LiveServer, tmp_path: Path) -> None:
    """kill -9 of a local agent mid-run: its processes die with it, its task runs again (requeued,
    not retried: maxTaskRetryCount stays untouched), never beside the killed run, and its node
    comes back through a new agent to idle."""
    pool_id, nodes = pools.add(2)
    log = tmp_path / "runs.log"
    job_id = add_job(batch, pool_id)
    line = '"$AZ_BATCH_TASK_ID" "$AZ_BATCH_NODE_ID" "$(date +%s.%N)" >> "$RUNS_LOG"'
    add_tasks(batch, job_id, {"a": sh(f"echo start {line}; sleep 5; echo end {line}"),
                              "b": sh(f"echo start {line}; sleep 5; echo end {line}")},
              env={"RUNS_LOG": str(log)})
    wait_for(lambda: len([r for r in _runs(log) if r[0] == "start"]) == 2, message="both tasks started")
    on_node = {batch.get_task(job_id, t).node_info.node_id: t for t in ("a", "b")}
    assert set(on_node) == set(nodes)
    lost_node, other_node = nodes
    lost_task = on_node[lost_node]
    booted = batch.get_node(pool_id, lost_node).last_boot_time
    supervisor = live_nodes.app.runtime.provider
    pid = supervisor.pid_of(lost_node)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    wait_for(lambda: batch.get_task(job_id, lost_task).execution_info.requeue_count == 1, 10,
             message="the task of the killed agent requeued")
    task = batch.get_task(job_id, lost_task)
    assert task.execution_info.retry_count == 0 and task.execution_info.last_requeue_time is not None

    sampled = []

    def done() -> bool:
        active, running, completed, succeeded, failed = counts(batch, job_id)
        sampled.append((active, running, completed))
        assert active + running + completed == 2 and (succeeded, failed) == (completed, 0), sampled
        return completed == 2

    wait_for(done, 30, message="both tasks completed")
    assert counts(batch, job_id) == (0, 0, 2, 2, 0)
    task = batch.get_task(job_id, lost_task)
    assert (task.execution_info.requeue_count, task.execution_info.retry_count) == (1, 0)
    assert task.execution_info.result == "success"
    runs = _runs(log)
    # The killed run never went on: it has no end, and its replacement started after it was killed.
    assert not [r for r in runs if r[0] == "end" and r[1] == lost_task and r[3] < max(
        s[3] for s in runs if s[0] == "start" and s[1] == lost_task)], runs
    starts = sorted(r[3] for r in runs if r[0] == "start" and r[1] == lost_task)
    ends = [r[3] for r in runs if r[0] == "end" and r[1] == lost_task]
    assert len(starts) == 2 and len(ends) == 1 and ends[0] > starts[1], runs
    wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["idle", "idle"], 30,
             message="both nodes idle again")
    assert batch.get_node(pool_id, lost_node).last_boot_time > booted


# -- 8. pools and nodes ------------------------------------------------------------------------------------


def _node_counts(batch: BatchClient, pool_id: str) -> m.BatchNodeCounts:
    return next(c for c in batch.list_pool_node_counts() if c.pool_id == pool_id).dedicated


def test_pool_add_resize_remove_and_delete(batch: BatchClient, pools: Pools, live_nodes: LiveServer) -> None:
    pool_id, nodes = pools.add(2, slots=2)
    pool = batch.get_pool(pool_id)
    assert (pool.current_dedicated_nodes, pool.allocation_state) == (2, "steady")
    for node in batch.list_nodes(pool_id):
        assert (node.state, node.scheduling_state, node.vm_size, node.is_dedicated) == (
            "idle", "enabled", "standard_d2s_v3", True)
        assert node.node_agent_info is not None and node.node_agent_info.version
        assert node.allocation_time is not None and node.last_boot_time is not None
        assert node.last_boot_time >= node.allocation_time
        assert (node.running_tasks_count, node.total_tasks_run) == (0, 0)
        assert node.affinity_id == f"TVM:{node.id}"
    counted = _node_counts(batch, pool_id)
    assert (counted.idle, counted.running, counted.total) == (2, 0, 2)

    # A running task shows in the node counts and on the node.
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"long": sh("sleep 3")})
    wait_for(lambda: _node_counts(batch, pool_id).running == 1, message="a running node")
    counted = _node_counts(batch, pool_id)
    assert (counted.idle, counted.running, counted.total) == (1, 1, 2)
    busy = batch.get_node(pool_id, batch.get_task(job_id, "long").node_info.node_id)
    assert (busy.state, busy.running_tasks_count, busy.running_task_slots_count) == ("running", 1, 1)
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task")
    busy = batch.get_node(pool_id, busy.id)
    assert (busy.state, busy.running_tasks_count, busy.total_tasks_run, busy.total_tasks_succeeded) == ("idle", 0, 1, 1)

    # 2 -> 3 -> 1
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3),
                            polling_interval=1).result(timeout=30)
    grown = idle_nodes(batch, pool_id, 3)
    assert set(nodes) < set(grown)
    assert batch.get_pool(pool_id).current_dedicated_nodes == 3
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1),
                            polling_interval=1).result(timeout=30)
    (kept,) = wait_for(lambda: [n.id for n in batch.list_nodes(pool_id)] if len(list(batch.list_nodes(pool_id))) == 1
                       else None, message="1 node left")
    pool = batch.get_pool(pool_id)
    assert (pool.current_dedicated_nodes, pool.target_dedicated_nodes, pool.allocation_state) == (1, 1, "steady")
    supervisor = live_nodes.app.runtime.provider
    removed = [n for n in grown if n != kept]
    wait_for(lambda: all(supervisor.pid_of(n) is None for n in removed), 10,
             message="the agents of the removed nodes to exit")

    # RemoveNodes of that node.
    pid = supervisor.pid_of(kept)
    assert pid is not None
    batch.begin_remove_nodes(pool_id, m.BatchNodeRemoveOptions(node_ids=[kept]), polling_interval=1).result(timeout=30)
    wait_for(lambda: not list(batch.list_nodes(pool_id)), message="the node removed")
    pool = batch.get_pool(pool_id)
    assert (pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (0, 0)
    wait_for(lambda: supervisor.pid_of(kept) is None, 10, message="the agent of the removed node to exit")
    assert _node_counts(batch, pool_id).total == 0

    # Delete: the pool disappears.
    batch.begin_delete_pool(pool_id, polling_interval=1).result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        batch.get_pool(pool_id)


def test_pool_delete_stops_its_agents(batch: BatchClient, pools: Pools, live_nodes: LiveServer) -> None:
    pool_id, nodes = pools.add(2)
    supervisor = live_nodes.app.runtime.provider
    pids = [supervisor.pid_of(n) for n in nodes]
    assert all(pids)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"long": sh("sleep 30")})
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="the task running")
    batch.begin_delete_pool(pool_id, polling_interval=1).result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        batch.get_pool(pool_id)
    wait_for(lambda: all(supervisor.pid_of(n) is None for n in nodes), 15, message="the pool's agents to exit")
    wait_for(lambda: not any(supervisor.node_root(n).exists() for n in nodes), 15,
             message="the nodes' directories removed")
    task = batch.get_task(job_id, "long")
    assert task.state == "active" and task.execution_info.requeue_count == 1
    assert counts(batch, job_id) == (1, 0, 0, 0, 0)


def test_resize_down_requeues_running_tasks(batch: BatchClient, pools: Pools, tmp_path: Path) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id)
    marker = tmp_path / "ran-once"
    add_tasks(batch, job_id, {"t": sh('if [ -e "$MARKER" ]; then exit 0; fi; touch "$MARKER"; sleep 30')},
              env={"MARKER": str(marker)})
    wait_for(lambda: marker.exists(), message="the task running")
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0, node_deallocation_option="requeue"),
                            polling_interval=1).result(timeout=30)
    task = batch.get_task(job_id, "t")
    assert task.state == "active"
    assert (task.execution_info.requeue_count, task.execution_info.retry_count) == (1, 0)
    assert counts(batch, job_id) == (1, 0, 0, 0, 0)
    wait_for(lambda: not list(batch.list_nodes(pool_id)), message="the node to leave")
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1),
                            polling_interval=1).result(timeout=30)
    wait_for(lambda: all_completed(batch, job_id, 1), message="the requeued task to complete on a new node")
    task = batch.get_task(job_id, "t")
    assert task.execution_info.result == "success" and task.node_info.node_id != node_id


def test_resize_down_with_taskcompletion_waits_for_the_task(batch: BatchClient, pools: Pools) -> None:
    pool_id, (node_id,) = pools.add(1)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"t": sh("sleep 3")})
    wait_for(lambda: batch.get_task(job_id, "t").state == "running", message="the task running")
    poller = batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0,
                                                                       node_deallocation_option="taskcompletion"),
                                     polling_interval=1)
    node = batch.get_node(pool_id, node_id)
    assert (node.state, node.scheduling_state) == ("leavingpool", "disabled")
    assert batch.get_task(job_id, "t").state == "running"
    assert _node_counts(batch, pool_id).leaving_pool == 1
    pool = batch.get_pool(pool_id)
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("resizing", 1)
    poller.result(timeout=15)  # the resize ends when the node has left
    assert not list(batch.list_nodes(pool_id))
    task = batch.get_task(job_id, "t")
    assert (task.state, task.execution_info.result, task.execution_info.requeue_count) == ("completed", "success", 0)
    pool = batch.get_pool(pool_id)
    assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 0)


# -- 9. start tasks ----------------------------------------------------------------------------------------


def test_start_task_runs_before_the_node_is_idle(batch: BatchClient, pools: Pools) -> None:
    start = m.BatchStartTask(command_line=sh('echo started > "$AZ_BATCH_NODE_STARTUP_DIR/started.txt"; sleep 1'),
                             wait_for_success=True)
    pool_id, _ = pools.add(1, start_task=start, wait_idle=False)
    wait_for(lambda: [n.state for n in batch.list_nodes(pool_id)] == ["waitingforstarttask"], 20,
             message="the node waiting for its start task")
    (node_id,) = idle_nodes(batch, pool_id, 1)
    node = batch.get_node(pool_id, node_id)
    info = node.start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == ("completed", 0, "success", 0)
    assert info.end_time >= info.start_time
    assert node.start_task.command_line == start.command_line
    assert node_file(batch, pool_id, node_id, "startup/started.txt") == "started\n"
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"a": sh("echo a")})
    wait_for(lambda: all_completed(batch, job_id, 1), message="a task on the started node")


def test_failed_start_task_leaves_the_node_unschedulable(batch: BatchClient, pools: Pools) -> None:
    start = m.BatchStartTask(command_line=sh('echo try >> "$AZ_BATCH_NODE_STARTUP_DIR/tries"; exit 1'),
                             wait_for_success=True, max_task_retry_count=1)
    pool_id, _ = pools.add(1, start_task=start, wait_idle=False)
    (node,) = wait_for(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "starttaskfailed"], 20,
                       message="the node in starttaskfailed")
    info = node.start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == ("completed", 1, "failure", 1)
    assert info.failure_info is not None and info.last_retry_time is not None
    assert node_file(batch, pool_id, node.id, "startup/tries") == "try\ntry\n"
    assert _node_counts(batch, pool_id).start_task_failed == 1
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"a": sh("echo a")})
    time.sleep(1.5)  # a negative: nothing is placed there however long one waits
    assert batch.get_task(job_id, "a").state == "active"
    assert batch.get_node(pool_id, node.id).state == "starttaskfailed"


# -- 10. job disable ---------------------------------------------------------------------------------------


def _disable(batch: BatchClient, job_id: str, option: str):  # type: ignore[no-untyped-def]
    return batch.begin_disable_job(job_id, m.BatchJobDisableOptions(disable_tasks=option), polling_interval=1)


def test_disable_requeue_then_enable(batch: BatchClient, pools: Pools, tmp_path: Path) -> None:
    pool_id, _ = pools.add(1)
    job_id = add_job(batch, pool_id)
    marker = tmp_path / "ran-once"
    add_tasks(batch, job_id, {"t": sh('if [ -e "$MARKER" ]; then exit 0; fi; touch "$MARKER"; sleep 30')},
              env={"MARKER": str(marker)})
    wait_for(lambda: marker.exists(), message="the task running")
    _disable(batch, job_id, "requeue").result(timeout=30)
    assert batch.get_job(job_id).state == "disabled"
    task = batch.get_task(job_id, "t")
    assert task.state == "active"
    assert (task.execution_info.requeue_count, task.execution_info.retry_count) == (1, 0)
    assert counts(batch, job_id) == (1, 0, 0, 0, 0)
    batch.begin_enable_job(job_id, polling_interval=1).result(timeout=30)
    assert batch.get_job(job_id).state == "active"
    wait_for(lambda: all_completed(batch, job_id, 1), message="the task to run again")
    assert batch.get_task(job_id, "t").execution_info.result == "success"


def test_disable_terminate_ends_running_tasks(batch: BatchClient, pools: Pools) -> None:
    pool_id, _ = pools.add(1)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"t": sh("sleep 30"), "u": sh("echo u")})
    wait_for(lambda: batch.get_task(job_id, "t").state == "running", message="the task running")
    _disable(batch, job_id, "terminate").result(timeout=30)
    assert batch.get_job(job_id).state == "disabled"
    task = batch.get_task(job_id, "t")
    assert task.state == "completed"
    assert task.execution_info.result == "failure" and task.execution_info.failure_info.code == "TaskEnded"
    assert batch.get_task(job_id, "u").state == "active"
    assert counts(batch, job_id) == (1, 0, 1, 0, 1)


def test_disable_wait_lets_running_tasks_finish(batch: BatchClient, pools: Pools) -> None:
    pool_id, _ = pools.add(1)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"t": sh("sleep 2"), "u": sh("echo u")})
    wait_for(lambda: batch.get_task(job_id, "t").state == "running", message="the task running")
    poller = _disable(batch, job_id, "wait")
    assert batch.get_job(job_id).state == "disabling"
    assert batch.get_task(job_id, "t").state == "running"
    wait_for(lambda: batch.get_job(job_id).state == "disabled", 15, message="the job disabled after its task ended")
    poller.result(timeout=5)
    task = batch.get_task(job_id, "t")
    assert (task.state, task.execution_info.result) == ("completed", "success")
    assert batch.get_task(job_id, "u").state == "active"
    batch.begin_enable_job(job_id, polling_interval=1).result(timeout=30)
    wait_for(lambda: all_completed(batch, job_id, 2), message="the remaining task after enable")
    assert counts(batch, job_id) == (0, 0, 2, 2, 0)


def test_disable_wait_ends_when_its_running_task_is_requeued_by_a_resize(batch: BatchClient, pools: Pools) -> None:
    pool_id, _ = pools.add(1)
    job_id = add_job(batch, pool_id)
    add_tasks(batch, job_id, {"t": sh("sleep 30")})
    wait_for(lambda: batch.get_task(job_id, "t").state == "running", message="the task running")
    _disable(batch, job_id, "wait")
    assert batch.get_job(job_id).state == "disabling"
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0, node_deallocation_option="requeue"),
                            polling_interval=1).result(timeout=30)
    assert batch.get_job(job_id).state == "disabled"
    task = batch.get_task(job_id, "t")
    assert (task.state, task.execution_info.requeue_count) == ("active", 1)
    assert counts(batch, job_id) == (1, 0, 0, 0, 0)
