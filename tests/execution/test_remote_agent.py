"""`openbatch agent` started by hand (as on another host) joins a pool with its own nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import alive
from tests.sdk.conftest import uid
from tests.support.live import LiveServer

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def remote_pool(batch: BatchClient, live_nodes: LiveServer, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    pool_id = uid("pool")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=0, task_slots_per_node=2,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    agent = subprocess.Popen(
        [sys.executable, "-m", "openbatch", "agent", "--server", live_nodes.url, "--account", live_nodes.account,
         "--key", live_nodes.key, "--pool", pool_id, "--nodes", "2", "--root", str(tmp_path / "remote")],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield pool_id, agent
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()


def test_agent_joins_runs_tasks_and_serves_files(batch: BatchClient, remote_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pool_id, _ = remote_pool
    nodes = wait_for(lambda: (ns := list(batch.list_nodes(pool_id))) and len(ns) == 2
                     and all(n.state == "idle" for n in ns) and ns, message="2 idle remote nodes")
    assert batch.get_pool(pool_id).current_dedicated_nodes == 2
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="hello", command_line="/bin/sh -c 'echo remote hello'"))
    wait_for(lambda: batch.get_task(job_id, "hello").state == "completed", message="task done")
    task = batch.get_task(job_id, "hello")
    assert task.execution_info.exit_code == 0 and task.node_info.node_id in {n.id for n in nodes}
    # the files live under the agent's own --root, read through the agent's connection
    assert (tmp_path / "remote" / task.node_info.node_id / task.node_info.task_root_directory / "stdout.txt").exists()
    assert b"".join(batch.download_task_file(job_id, "hello", "stdout.txt")) == b"remote hello\n"
    names = {f.name for f in batch.list_task_files(job_id, "hello")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= names
    props = batch.get_task_file_properties(job_id, "hello", "stdout.txt")
    assert props.content_length == len(b"remote hello\n")
    node_files = {f.name for f in batch.list_node_files(pool_id, task.node_info.node_id)}
    assert {"shared", "startup", "workitems"} <= node_files


def test_a_killed_agent_makes_its_nodes_unusable(batch: BatchClient, remote_pool,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    pool_id, agent = remote_pool
    wait_for(lambda: (ns := list(batch.list_nodes(pool_id))) and len(ns) == 2 and all(n.state == "idle" for n in ns),
             message="2 idle remote nodes")
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    pids = tmp_path / "pids"
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="long", command_line=f"/bin/sh -c 'echo $$ >> {pids}; sleep 60 & echo $! >> {pids}; wait'"))
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, message="the task and its child running")
    agent.send_signal(signal.SIGKILL)
    agent.wait(5)
    # the task's processes end with the agent (they would run on unseen while the task ran elsewhere)
    try:
        wait_for(lambda: not any(alive(int(pid)) for pid in pids.read_text().split()), timeout=5,
                 message="the killed agent's task processes gone")
    except AssertionError as failure:   # say what is left, and whether the reaper is still there
        left = {pid: _proc_stat(pid) for pid in pids.read_text().split()}
        reapers = subprocess.run(["pgrep", "-af", "openbatch.agent.reaper"], capture_output=True, text=True).stdout
        raise AssertionError(f"{failure}; processes: {left}; reapers: {reapers!r}") from None
    wait_for(lambda: all(n.state == "unusable" for n in batch.list_nodes(pool_id)), timeout=15,
             message="nodes unusable after the agent died")


def _proc_stat(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:40]
    except OSError:
        return "gone"
