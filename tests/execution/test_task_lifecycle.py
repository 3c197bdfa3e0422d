"""The task lifecycle end to end on real local nodes, through the official SDK (azure-batch 15).

Each test makes its own jobs (uid() ids). Tests that are about placement make their own
pool of the shape they need; the others share one pool per store (1 node x 4 slots, so
files written to $AZ_BATCH_NODE_SHARED_DIR by one attempt are seen by the next).
"""

from __future__ import annotations

import functools
import http.server
import os
import shlex
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.live import LiveServer


# -- helpers ------------------------------------------------------------------------------------


def _image() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy",
                                                sku="22_04-lts"),
        node_agent_sku_id="batch.node.ubuntu 22.04")


def make_pool(batch: BatchClient, nodes: int, slots: int, fill: str | None = None, order: str | None = None) -> str:
    """A pool of ``nodes`` idle nodes with ``slots`` task slots each."""
    pool_id = uid("pool")
    policy = m.BatchTaskSchedulingPolicy(node_fill_type=fill or "spread", job_default_order=order) \
        if fill or order else None
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_image(),
        target_dedicated_nodes=nodes, task_slots_per_node=slots, task_scheduling_policy=policy))

    def idle() -> bool:
        found = list(batch.list_nodes(pool_id))
        return len(found) == nodes and all(n.state == "idle" for n in found)

    wait_for(idle, timeout=30, message=f"{nodes} idle node(s) in {pool_id}")
    return pool_id


def drop_pool(batch: BatchClient, pool_id: str) -> None:
    try:
        batch.begin_delete_pool(pool_id, polling_interval=0)
    except Exception:  # noqa: BLE001 - cleanup only: stopping the agents early
        pass


def make_job(batch: BatchClient, pool_id: str, **options: object) -> str:
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), **options))
    return job_id


def sh(script: str) -> str:
    """A command line running ``script`` under /bin/sh (Batch runs command lines without a shell)."""
    return f"/bin/sh -c {shlex.quote(script)}"


def add_tasks(batch: BatchClient, job_id: str, *tasks: m.BatchTaskCreateOptions) -> None:
    result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=list(tasks)))
    assert all(r.status == "success" for r in result.result_values), [r.as_dict() for r in result.result_values]


def task(task_id: str, script: str, **options: object) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=sh(script), **options)


def wait_completed(batch: BatchClient, job_id: str, task_id: str, timeout: float = 30) -> m.BatchTask:
    def done() -> m.BatchTask | None:
        found = batch.get_task(job_id, task_id)
        return found if found.state == "completed" else None

    return wait_for(done, timeout=timeout, message=f"task {task_id} of {job_id} completed")


def wait_all_completed(batch: BatchClient, job_id: str, count: int, timeout: float = 30) -> list[m.BatchTask]:
    def done() -> bool:
        return batch.get_job_task_counts(job_id).task_counts.completed == count

    wait_for(done, timeout=timeout, message=f"{count} completed tasks in {job_id}")
    return list(batch.list_tasks(job_id))


def read_file(batch: BatchClient, job_id: str, task_id: str, name: str = "stdout.txt") -> str:
    return b"".join(batch.download_task_file(job_id, task_id, name)).decode()


def read_file_if_there(batch: BatchClient, job_id: str, task_id: str, name: str = "stdout.txt") -> str:
    """The file's text, or "" while it does not exist yet (a task is running from the moment it is
    assigned to a node, before its process and its output files exist)."""
    try:
        return read_file(batch, job_id, task_id, name)
    except ResourceNotFoundError:
        return ""


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def interval(t: m.BatchTask) -> tuple[datetime, datetime]:
    info = t.execution_info
    assert info is not None and info.start_time is not None and info.end_time is not None, t.as_dict()
    return info.start_time, info.end_time


def assert_no_overlap(tasks: list[m.BatchTask]) -> None:
    spans = sorted(interval(t) for t in tasks)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two tasks ran at once: {spans}"


@pytest.fixture(scope="module")
def shared_pool(live_nodes: LiveServer) -> Iterator[str]:
    """One pool per store for the tests that need no particular shape: 1 node x 4 slots."""
    client = BatchClient(endpoint=live_nodes.url, credential=AzureNamedKeyCredential(live_nodes.account,
                                                                                      live_nodes.key))
    pool_id = make_pool(client, 1, 4)
    yield pool_id
    drop_pool(client, pool_id)


@pytest.fixture
def pool_factory(batch: BatchClient) -> Iterator:
    made: list[str] = []

    def make(nodes: int, slots: int, fill: str | None = None, order: str | None = None) -> str:
        pool_id = make_pool(batch, nodes, slots, fill, order)
        made.append(pool_id)
        return pool_id

    yield make
    for pool_id in made:
        drop_pool(batch, pool_id)


# -- 1. lifecycle fields ------------------------------------------------------------------------


def test_completed_task_has_its_lifecycle_fields(batch: BatchClient, pool_factory, live_nodes: LiveServer) -> None:
    pool_id = pool_factory(1, 1)
    job_id = make_job(batch, pool_id)
    add_tasks(batch, job_id, task("t1", "echo hello; echo made > made.txt"))
    done = wait_completed(batch, job_id, "t1")

    assert done.state == "completed" and done.previous_state == "running"
    info = done.execution_info
    assert info.start_time is not None and info.end_time is not None and info.start_time <= info.end_time
    assert (info.exit_code, info.result, info.retry_count, info.requeue_count) == (0, "success", 0, 0)
    assert info.failure_info is None
    node_info = done.node_info
    node = batch.get_node(pool_id, node_info.node_id)
    assert node_info.pool_id == pool_id
    assert node_info.affinity_id == node.affinity_id
    assert node_info.node_url == node.url
    assert node_info.task_root_directory == f"workitems/{job_id}/job-1/t1"
    assert node_info.task_root_directory_url == f"{node.url}/files/workitems/{job_id}/job-1/t1"
    assert read_file(batch, job_id, "t1") == "hello\n"
    assert read_file(batch, job_id, "t1", "stderr.txt") == ""
    names = {f.name for f in batch.list_task_files(job_id, "t1")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= names, names
    files = {f.name: f for f in batch.list_task_files(job_id, "t1", recursive=True)}
    assert files["wd/made.txt"].is_directory is False and files["wd/made.txt"].properties.content_length == 5
    assert read_file(batch, job_id, "t1", "wd/made.txt") == "made\n"

    node = wait_for(lambda: (n := batch.get_node(pool_id, node_info.node_id)).state == "idle" and n,
                    message="the node idle again")
    assert (node.total_tasks_run, node.total_tasks_succeeded, node.running_tasks_count) == (1, 1, 0)


def test_tasks_start_as_soon_as_they_can(batch: BatchClient, shared_pool: str) -> None:
    """Adding or reactivating a task wakes the scheduler: it does not wait for a periodic sweep (1 s)."""
    job_id = make_job(batch, shared_pool)
    delays = []
    for i in range(6):
        add_tasks(batch, job_id, task(f"t{i}", "true"))
        done = wait_completed(batch, job_id, f"t{i}")
        delays.append((done.execution_info.start_time - done.creation_time).total_seconds())
    add_tasks(batch, job_id, task("fails", "exit 1"))
    wait_completed(batch, job_id, "fails")
    for _ in range(2):
        batch.reactivate_task(job_id, "fails")
        reactivated = batch.get_task(job_id, "fails")
        done = wait_completed(batch, job_id, "fails")
        if reactivated.state == "active":
            delays.append((done.execution_info.start_time - reactivated.state_transition_time).total_seconds())
    assert sum(delays) < 0.25 * len(delays), delays


# -- 2. environment and layout ------------------------------------------------------------------


def test_environment_and_directory_layout(batch: BatchClient, shared_pool: str, live_nodes: LiveServer) -> None:
    job_id = make_job(batch, shared_pool, common_environment_settings=[
        m.EnvironmentSetting(name="FROM_JOB", value="job"), m.EnvironmentSetting(name="OVERRIDDEN", value="job")])
    add_tasks(batch, job_id,
              task("env", "env; pwd", environment_settings=[m.EnvironmentSetting(name="OVERRIDDEN", value="task"),
                                                            m.EnvironmentSetting(name="FROM_TASK", value="t")]),
              m.BatchTaskCreateOptions(id="noshell", command_line="echo $HOME"))
    done = wait_completed(batch, job_id, "env")
    assert done.execution_info.exit_code == 0
    lines = read_file(batch, job_id, "env").splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    cwd = lines[-1]
    node_id = done.node_info.node_id
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == cwd and cwd.endswith("/wd")
    assert env["AZ_BATCH_TASK_DIR"] == os.path.dirname(cwd)
    assert env["AZ_BATCH_TASK_DIR"] == os.path.join(env["AZ_BATCH_NODE_ROOT_DIR"], done.node_info.task_root_directory)
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == os.path.join(env["AZ_BATCH_NODE_ROOT_DIR"], "shared")
    assert os.path.isdir(env["AZ_BATCH_NODE_SHARED_DIR"])
    assert (env["AZ_BATCH_JOB_ID"], env["AZ_BATCH_TASK_ID"]) == (job_id, "env")
    assert (env["AZ_BATCH_POOL_ID"], env["AZ_BATCH_NODE_ID"]) == (shared_pool, node_id)
    assert env["AZ_BATCH_ACCOUNT_NAME"] == live_nodes.account
    assert env["AZ_BATCH_TASK_RETRY_COUNT"] == "0"
    assert (env["FROM_JOB"], env["FROM_TASK"], env["OVERRIDDEN"]) == ("job", "t", "task")

    wait_completed(batch, job_id, "noshell")
    assert read_file(batch, job_id, "noshell") == "$HOME\n"


# -- 3. output while running ----------------------------------------------------------------------


def test_stdout_and_stderr_are_readable_while_the_task_runs(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, task("t", "echo started; echo complaint >&2; sleep 3; echo finished"))

    def started() -> bool:
        if batch.get_task(job_id, "t").state != "running":
            return False
        return read_file_if_there(batch, job_id, "t") == "started\n"

    wait_for(started, timeout=10, message="'started' in stdout.txt of the running task")
    assert read_file(batch, job_id, "t", "stderr.txt") == "complaint\n"
    assert batch.get_task(job_id, "t").state == "running"
    wait_completed(batch, job_id, "t")
    assert read_file(batch, job_id, "t") == "started\nfinished\n"


# -- 4. maxWallClockTime ------------------------------------------------------------------------


def test_max_wall_clock_time_ends_the_task(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, m.BatchTaskCreateOptions(
        id="slow", command_line="sleep 30",
        constraints=m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=1))))
    done = wait_completed(batch, job_id, "slow", timeout=10)
    info = done.execution_info
    assert info.result == "failure"
    assert info.failure_info.code == "MaxWallClockTimeExpiry"
    assert info.retry_count == 0
    assert (info.end_time - info.start_time).total_seconds() < 5


# -- 5. retries ---------------------------------------------------------------------------------


def test_failed_task_is_retried_up_to_max_task_retry_count(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, constraints=m.BatchJobConstraints(max_task_retry_count=2))
    attempts = f"{job_id}-attempts"
    add_tasks(batch, job_id,
              task("job-level", f"echo try $AZ_BATCH_TASK_RETRY_COUNT >> $AZ_BATCH_NODE_SHARED_DIR/{attempts}; exit 3"),
              task("no-retry", "exit 3", constraints=m.BatchTaskConstraints(max_task_retry_count=0)),
              task("one-retry", "exit 4", constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    done = wait_completed(batch, job_id, "job-level")
    info = done.execution_info
    assert (info.retry_count, info.exit_code, info.result) == (2, 3, "failure")
    assert info.failure_info.code == "FailureExitCode" and info.failure_info.category == "usererror"
    assert info.last_retry_time is not None
    shared = Path(read_shared_dir(batch, shared_pool))
    assert (shared / attempts).read_text() == "try 0\ntry 1\ntry 2\n"

    no_retry = wait_completed(batch, job_id, "no-retry").execution_info
    assert (no_retry.retry_count, no_retry.exit_code, no_retry.result) == (0, 3, "failure")
    one_retry = wait_completed(batch, job_id, "one-retry").execution_info
    assert (one_retry.retry_count, one_retry.exit_code, one_retry.result) == (1, 4, "failure")
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.completed, counts.failed, counts.succeeded, counts.active, counts.running) == (3, 3, 0, 0, 0)


def read_shared_dir(batch: BatchClient, pool_id: str) -> str:
    """$AZ_BATCH_NODE_SHARED_DIR of the (single) node of ``pool_id``, asked of a task run there."""
    job_id = make_job(batch, pool_id)
    add_tasks(batch, job_id, task("where", "echo $AZ_BATCH_NODE_SHARED_DIR"))
    wait_completed(batch, job_id, "where")
    return read_file(batch, job_id, "where").strip()


def test_retried_task_that_then_succeeds(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, task("second-time", 'echo attempt $AZ_BATCH_TASK_RETRY_COUNT; '
                                                 'test "$AZ_BATCH_TASK_RETRY_COUNT" -ge 1',
                                  constraints=m.BatchTaskConstraints(max_task_retry_count=3)))
    done = wait_completed(batch, job_id, "second-time")
    info = done.execution_info
    assert (info.result, info.exit_code, info.retry_count, info.failure_info) == ("success", 0, 1, None)
    assert read_file(batch, job_id, "second-time") == "attempt 1\n"
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.succeeded, counts.failed) == (1, 0)


# -- 6. terminate and delete kill the process tree ----------------------------------------------


_TREE = "sleep 60 & echo $$ $! > $AZ_BATCH_NODE_SHARED_DIR/{name}.tmp; " \
        "mv $AZ_BATCH_NODE_SHARED_DIR/{name}.tmp $AZ_BATCH_NODE_SHARED_DIR/{name}; " \
        "echo $AZ_BATCH_NODE_SHARED_DIR/{name}; wait"


def _running_tree(batch: BatchClient, job_id: str, task_id: str) -> list[int]:
    """The pids (shell, its child) a running task wrote to the shared dir."""
    def pids() -> list[int] | None:
        if batch.get_task(job_id, task_id).state != "running":
            return None
        path = read_file_if_there(batch, job_id, task_id).strip()
        if not path or not os.path.exists(path):
            return None
        return [int(p) for p in Path(path).read_text().split()]

    found = wait_for(pids, timeout=10, message=f"the pids of {task_id}")
    assert len(found) == 2 and all(alive(p) for p in found), found
    return found


def test_terminate_kills_the_process_tree(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, task("tree", _TREE.format(name=uid("pids"))))
    pids = _running_tree(batch, job_id, "tree")
    batch.terminate_task(job_id, "tree")
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10, message=f"processes {pids} gone")
    done = wait_completed(batch, job_id, "tree")
    info = done.execution_info
    assert info.result == "failure" and info.failure_info.code == "TaskEnded"
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.running, counts.completed, counts.failed) == (0, 1, 1)


def test_delete_of_a_running_task_kills_it(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, task("tree", _TREE.format(name=uid("pids"))))
    pids = _running_tree(batch, job_id, "tree")
    batch.delete_task(job_id, "tree")
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10, message=f"processes {pids} gone")
    with pytest.raises(ResourceNotFoundError):
        batch.get_task(job_id, "tree")
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.active, counts.running, counts.completed) == (0, 0, 0)


# -- 7. reactivate ------------------------------------------------------------------------------


def test_reactivated_task_runs_again(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    marker = f"$AZ_BATCH_NODE_SHARED_DIR/{uid('marker')}"
    add_tasks(batch, job_id, task("flaky", f"if [ -e {marker} ]; then echo second; else touch {marker}; exit 1; fi"))
    first = wait_completed(batch, job_id, "flaky")
    assert (first.execution_info.result, first.execution_info.exit_code) == ("failure", 1)
    batch.reactivate_task(job_id, "flaky")
    again = batch.get_task(job_id, "flaky")
    assert again.state in ("active", "running", "completed")
    done = wait_completed(batch, job_id, "flaky")
    info = done.execution_info
    assert (info.result, info.exit_code, info.retry_count, info.failure_info) == ("success", 0, 0, None)
    assert read_file(batch, job_id, "flaky") == "second\n"
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.completed, counts.succeeded, counts.failed) == (1, 1, 0)


# -- 8. requiredSlots ---------------------------------------------------------------------------


def test_required_slots(batch: BatchClient, pool_factory) -> None:
    pool_id = pool_factory(1, 4)
    job_id = make_job(batch, pool_id)
    # The tasks that can never fit come first: they must not hold back the others.
    add_tasks(batch, job_id,
              *[task(f"too-big{i}", "true", required_slots=5) for i in range(20)],
              *[task(f"big{i}", "sleep 0.4", required_slots=3) for i in range(3)],
              task("small", "sleep 0.4", required_slots=1))

    seen_slots: list[int] = []

    def watch() -> bool:
        counts = batch.get_job_task_counts(job_id)
        seen_slots.append(counts.task_slot_counts.running)
        return counts.task_counts.completed == 4

    wait_for(watch, timeout=30, message="the tasks that fit completed")
    assert max(seen_slots) <= 4, seen_slots
    tasks = {t.id: t for t in batch.list_tasks(job_id)}
    assert_no_overlap([tasks[f"big{i}"] for i in range(3)])
    node = wait_for(lambda: (n := next(iter(batch.list_nodes(pool_id)))).state == "idle" and n,
                    message="the node idle with too-big tasks queued")
    assert node.running_tasks_count == 0
    too_big = [t for t in batch.list_tasks(job_id) if t.id.startswith("too-big")]
    assert len(too_big) == 20 and all(t.state == "active" and t.execution_info.start_time is None for t in too_big)
    counts = batch.get_job_task_counts(job_id)
    assert (counts.task_counts.active, counts.task_slot_counts.active) == (20, 100)


# -- 9. nodeFillType ----------------------------------------------------------------------------


@pytest.mark.parametrize("fill, nodes_used", [("pack", 1), ("spread", 2)])
def test_node_fill_type(batch: BatchClient, pool_factory, fill: str, nodes_used: int) -> None:
    pool_id = pool_factory(2, 4, fill)
    job_id = make_job(batch, pool_id)
    add_tasks(batch, job_id, *[task(f"t{i}", "sleep 1") for i in range(4)])
    tasks = wait_all_completed(batch, job_id, 4)
    assert all(t.execution_info.result == "success" for t in tasks)
    used = {t.node_info.node_id for t in tasks}
    assert len(used) == nodes_used, (fill, [(t.id, t.node_info.node_id) for t in tasks])
    starts = sorted(t.execution_info.start_time for t in tasks)
    ends = sorted(t.execution_info.end_time for t in tasks)
    assert starts[-1] < ends[0], "the four tasks should have run at the same time"


# -- 10. job priority ---------------------------------------------------------------------------


def test_higher_priority_job_runs_first(batch: BatchClient, pool_factory, tmp_path: Path) -> None:
    pool_id = pool_factory(1, 1)
    gate = tmp_path / "go"
    blocker_job = make_job(batch, pool_id)
    add_tasks(batch, blocker_job, task("blocker", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    wait_for(lambda: batch.get_task(blocker_job, "blocker").state == "running", message="the blocker running")
    low = make_job(batch, pool_id, priority=-10)
    high = make_job(batch, pool_id, priority=100)
    add_tasks(batch, low, *[task(f"l{i}", "true") for i in range(3)])
    add_tasks(batch, high, *[task(f"h{i}", "true") for i in range(3)])
    gate.touch()
    low_tasks = wait_all_completed(batch, low, 3)
    high_tasks = wait_all_completed(batch, high, 3)
    last_high_end = max(interval(t)[1] for t in high_tasks)
    first_low_start = min(interval(t)[0] for t in low_tasks)
    assert last_high_end <= first_low_start, (
        sorted((interval(t)[0], t.id) for t in high_tasks + low_tasks))


@pytest.mark.parametrize("order", ["none", "creationtime"])
def test_job_default_order_among_equal_priority_jobs(batch: BatchClient, pool_factory, tmp_path: Path,
                                                      order: str) -> None:
    """jobDefaultOrder none: equal-priority jobs take the slots in turn; creationtime: the older job first."""
    pool_id = pool_factory(1, 1, order=order)
    gate = tmp_path / "go"
    blocker_job = make_job(batch, pool_id)
    add_tasks(batch, blocker_job, task("blocker", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    wait_for(lambda: batch.get_task(blocker_job, "blocker").state == "running", message="the blocker running")
    first, second = make_job(batch, pool_id), make_job(batch, pool_id)
    add_tasks(batch, first, *[task(f"a{i}", "true") for i in range(3)])
    add_tasks(batch, second, *[task(f"b{i}", "true") for i in range(3)])
    gate.touch()
    ran = wait_all_completed(batch, first, 3) + wait_all_completed(batch, second, 3)
    started = [t.id for t in sorted(ran, key=lambda t: interval(t)[0])]
    if order == "none":
        assert started == ["a0", "b0", "a1", "b1", "a2", "b2"], started
    else:
        assert started == ["a0", "a1", "a2", "b0", "b1", "b2"], started


def test_job_that_cannot_run_on_the_node_does_not_hold_back_others(batch: BatchClient, pool_factory) -> None:
    """A higher-priority job whose preparation task failed on the only node leaves that node to the others."""
    pool_id = pool_factory(1, 1)
    stuck = make_job(batch, pool_id, priority=100,
                     job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/sh -c 'exit 1'"))
    add_tasks(batch, stuck, *[task(f"s{i}", "true") for i in range(10)])
    wait_for(lambda: batch.get_job_task_counts(stuck).task_counts.active == 10 and any(
        e.job_preparation_task_execution_info.state == "completed"
        for e in batch.list_job_preparation_and_release_task_status(stuck)), message="the preparation failed")
    other = make_job(batch, pool_id)
    add_tasks(batch, other, *[task(f"o{i}", "true") for i in range(3)])
    wait_all_completed(batch, other, 3)
    counts = batch.get_job_task_counts(stuck).task_counts
    assert (counts.active, counts.running, counts.completed) == (10, 0, 0)


# -- 11. maxParallelTasks -----------------------------------------------------------------------


def test_max_parallel_tasks_one_never_overlaps(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, max_parallel_tasks=1)
    add_tasks(batch, job_id, *[task(f"t{i}", "sleep 0.2") for i in range(4)])
    running: list[int] = []

    def watch() -> bool:
        counts = batch.get_job_task_counts(job_id).task_counts
        running.append(counts.running)
        return counts.completed == 4

    wait_for(watch, timeout=30, message="4 completed")
    assert max(running) <= 1, running
    assert_no_overlap(list(batch.list_tasks(job_id)))


# -- 12. dependencies ---------------------------------------------------------------------------


def test_task_dependencies(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, uses_task_dependencies=True)
    deps = m.BatchTaskDependencies
    add_tasks(batch, job_id,
              task("c", "true", depends_on=deps(task_id_ranges=[m.BatchTaskIdRange(start=1, end=3)])),
              task("b", "true", depends_on=deps(task_ids=["a"])),
              task("a", "sleep 0.3"),
              *[task(str(i), f"sleep 0.{i}") for i in (1, 2, 3)],
              task("fails", "exit 1"),
              task("blocked", "true", depends_on=deps(task_ids=["fails"])),
              task("exit3", "exit 3", exit_conditions=m.ExitConditions(exit_codes=[
                  m.ExitCodeMapping(code=3, exit_options=m.ExitOptions(dependency_action="satisfy"))])),
              task("after-exit3", "true", depends_on=deps(task_ids=["exit3"])))

    def settled() -> bool:
        return batch.get_job_task_counts(job_id).task_counts.completed == 9

    wait_for(settled, timeout=30, message="9 of 10 tasks completed")
    tasks = {t.id: t for t in batch.list_tasks(job_id)}
    assert interval(tasks["b"])[0] >= interval(tasks["a"])[1]
    assert interval(tasks["c"])[0] >= max(interval(tasks[i])[1] for i in "123")
    assert tasks["exit3"].execution_info.exit_code == 3 and tasks["exit3"].execution_info.result == "failure"
    assert tasks["after-exit3"].execution_info.result == "success"
    assert interval(tasks["after-exit3"])[0] >= interval(tasks["exit3"])[1]
    assert tasks["fails"].execution_info.result == "failure"
    assert tasks["blocked"].state == "active" and tasks["blocked"].execution_info.start_time is None
    counts = batch.get_job_task_counts(job_id).task_counts
    assert (counts.active, counts.running, counts.succeeded, counts.failed) == (1, 0, 7, 2)


def test_waiting_dependents_do_not_hold_back_runnable_tasks(batch: BatchClient, pool_factory) -> None:
    """On a 1-slot pool, tasks that wait (forever, or for a task added later) come first in the queue."""
    pool_id = pool_factory(1, 1)
    job_id = make_job(batch, pool_id, uses_task_dependencies=True)
    deps = m.BatchTaskDependencies
    add_tasks(batch, job_id, task("fails", "exit 1"))
    wait_completed(batch, job_id, "fails")
    add_tasks(batch, job_id,
              *[task(f"blocked{i}", "true", depends_on=deps(task_ids=["fails"])) for i in range(10)],
              *[task(f"later{i}", "true", depends_on=deps(task_ids=["root"])) for i in range(10)],
              task("root", "true"), task("free", "true"))
    wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.completed == 13, timeout=30,
             message="fails, root, free and the 10 tasks depending on root completed")
    tasks = {t.id: t for t in batch.list_tasks(job_id)}
    assert all(tasks[f"later{i}"].execution_info.result == "success" for i in range(10))
    assert all(tasks[f"blocked{i}"].state == "active" for i in range(10))


# -- 13. exit conditions: job actions -----------------------------------------------------------


def test_task_failure_terminates_the_job(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, task_failure_mode="performexitoptionsjobaction")
    add_tasks(batch, job_id, task("ok", "true"), task("tolerated", "exit 6", exit_conditions=m.ExitConditions(
        exit_code_ranges=[m.ExitCodeRangeMapping(start=5, end=9, exit_options=m.ExitOptions(job_action="none"))])))
    wait_completed(batch, job_id, "ok")
    assert wait_completed(batch, job_id, "tolerated").execution_info.result == "failure"
    assert batch.get_job(job_id).state == "active"
    add_tasks(batch, job_id, task("bad", "exit 1"))
    wait_for(lambda: batch.get_job(job_id).state == "completed", timeout=15, message="the job completed")
    job = batch.get_job(job_id)
    assert job.execution_info.termination_reason == "TaskFailed"
    assert job.execution_info.end_time is not None


def test_task_failure_disables_the_job(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, task_failure_mode="performexitoptionsjobaction")
    add_tasks(batch, job_id, task("bad", "exit 2", exit_conditions=m.ExitConditions(
        exit_codes=[m.ExitCodeMapping(code=2, exit_options=m.ExitOptions(job_action="disable"))])))
    wait_for(lambda: batch.get_job(job_id).state == "disabled", timeout=15, message="the job disabled")
    done = batch.get_task(job_id, "bad")
    assert done.state == "completed" and done.execution_info.exit_code == 2


def test_disable_by_exit_condition_requeues_running_tasks(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool, task_failure_mode="performexitoptionsjobaction")
    marker = f"$AZ_BATCH_NODE_SHARED_DIR/{uid('marker')}"
    add_tasks(batch, job_id, task("long", f"if [ -e {marker} ]; then echo again; else touch {marker}; sleep 60; fi"))
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="long running")
    add_tasks(batch, job_id, task("bad", "exit 2", exit_conditions=m.ExitConditions(
        exit_codes=[m.ExitCodeMapping(code=2, exit_options=m.ExitOptions(job_action="disable"))])))
    wait_for(lambda: batch.get_job(job_id).state == "disabled", timeout=15, message="the job disabled")
    long = batch.get_task(job_id, "long")
    assert long.state == "active"
    assert (long.execution_info.requeue_count, long.execution_info.retry_count) == (1, 0)
    batch.begin_enable_job(job_id, polling_interval=1).result(timeout=30)
    done = wait_completed(batch, job_id, "long")
    assert (done.execution_info.result, done.execution_info.requeue_count) == ("success", 1)
    assert read_file(batch, job_id, "long") == "again\n"


# -- 14. onAllTasksComplete ---------------------------------------------------------------------


def test_all_tasks_complete_terminates_the_job(batch: BatchClient, shared_pool: str) -> None:
    job_id = make_job(batch, shared_pool)
    add_tasks(batch, job_id, *[task(f"t{i}", "sleep 0.3") for i in range(3)])
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    assert batch.get_job(job_id).state == "active"
    wait_for(lambda: batch.get_job(job_id).state == "completed", timeout=15, message="the job completed")
    job = batch.get_job(job_id)
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert all(t.state == "completed" and t.execution_info.result == "success" for t in batch.list_tasks(job_id))


# -- 15. task counts during a run ---------------------------------------------------------------


def test_task_counts_stay_consistent_during_a_run(batch: BatchClient, pool_factory) -> None:
    pool_id = pool_factory(2, 4)
    job_id = make_job(batch, pool_id)
    add_tasks(batch, job_id, *[task(f"t{i}", "sleep 0.2") for i in range(40)])
    seen: list[tuple[int, int, int, int, int]] = []

    def check() -> bool:
        c = batch.get_job_task_counts(job_id).task_counts
        row = (c.active, c.running, c.completed, c.succeeded, c.failed)
        seen.append(row)
        assert min(row) >= 0, row
        assert c.active + c.running + c.completed == 40, row
        assert c.running <= 8, row
        assert c.completed == c.succeeded + c.failed, row
        return c.completed == 40

    wait_for(check, timeout=40, interval=0.02, message="40 completed")
    assert any(0 < r[1] for r in seen), seen
    tasks = list(batch.list_tasks(job_id))
    recount = (sum(t.state == "active" for t in tasks), sum(t.state in ("running", "preparing") for t in tasks),
               sum(t.state == "completed" for t in tasks),
               sum(t.state == "completed" and t.execution_info.result == "success" for t in tasks),
               sum(t.state == "completed" and t.execution_info.result == "failure" for t in tasks))
    assert seen[-1] == recount == (0, 0, 40, 40, 0)


# -- 16. resource files -------------------------------------------------------------------------


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "data.txt").write_text("payload\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_resource_files_are_downloaded(batch: BatchClient, shared_pool: str, file_server: str) -> None:
    job_id = make_job(batch, shared_pool, constraints=m.BatchJobConstraints(max_task_retry_count=2))
    add_tasks(batch, job_id,
              task("reads", "cat in/data.txt; stat -c %a in/data.txt", resource_files=[
                  m.ResourceFile(http_url=f"{file_server}/data.txt", file_path="in/data.txt", file_mode="0600")]),
              task("missing", "true", resource_files=[
                  m.ResourceFile(http_url=f"{file_server}/missing.txt", file_path="in/missing.txt")]))
    done = wait_completed(batch, job_id, "reads")
    assert done.execution_info.result == "success"
    assert read_file(batch, job_id, "reads") == "payload\n600\n"

    failed = wait_completed(batch, job_id, "missing")
    info = failed.execution_info
    assert info.result == "failure" and info.retry_count == 0 and info.exit_code is None
    assert (info.failure_info.code, info.failure_info.category) == ("BlobNotFound", "usererror")
