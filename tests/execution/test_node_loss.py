"""A lost node is recovered, not abandoned: local agents killed or hung, remote agents that hang or lose
the network. Afterwards every task has completed exactly once, none ran twice at the same time, the
counts are exact and the nodes are back to idle."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchNodeRebootOptions, BatchNodeReimageOptions  # not exported by 15.1

from tests.execution.conftest import wait_for
from tests.execution.test_prep_release_nodes import Pools, add_job, counts, sh
from tests.execution.test_task_lifecycle import alive
from tests.sdk.conftest import uid
from tests.support.live import LiveServer

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def pools(batch: BatchClient) -> Iterator[Pools]:
    made = Pools(batch)
    yield made
    made.cleanup()


def _marked(script: str) -> str:
    """``script`` between a start and an end line in $RUNS_LOG (task id, pid, time)."""
    mark = '"$AZ_BATCH_TASK_ID" $$ "$(date +%s.%N)" >> "$RUNS_LOG"'
    return sh(f"echo start {mark}; {script}; echo end {mark}")


def _runs(log: Path) -> dict[str, list[tuple[str, int, float]]]:
    """task id -> its (event, pid, time) lines in order."""
    out: dict[str, list[tuple[str, int, float]]] = {}
    for line in log.read_text().splitlines() if log.exists() else ():
        event, task, pid, stamp = line.split()
        out.setdefault(task, []).append((event, int(pid), float(stamp)))
    return out


def _never_twice_at_once(runs: dict[str, list[tuple[str, int, float]]]) -> None:
    """Each task's last run ended, and each run before it ended before the next started, or was
    killed (a run whose exit had not been reported when its node was lost may also have ended)."""
    for task, lines in runs.items():
        starts = [line for line in lines if line[0] == "start"]
        ends = {pid: stamp for event, pid, stamp in lines if event == "end"}
        assert starts[-1][1] in ends, f"{task}: its last run did not end: {lines}"
        for before, after in zip(starts, starts[1:]):
            if before[1] in ends:
                assert ends[before[1]] <= after[2], f"{task} ran twice at once: {lines}"
            else:
                assert not alive(before[1]), f"{task}: a run of a lost node still runs: {lines}"


def _task_env(log: Path) -> list[m.EnvironmentSetting]:
    return [m.EnvironmentSetting(name="RUNS_LOG", value=str(log))]


# -- local agents ----------------------------------------------------------------------------------


def test_killed_local_agent_every_queued_task_runs_exactly_once(
        batch: BatchClient, pools: Pools, live_nodes: LiveServer, tmp_path: Path) -> None:
    """kill -9 of the agent hosting the pool's only node, with a queue behind it: nothing is lost."""
    pool_id, (node_id,) = pools.add(1, slots=4)
    log = tmp_path / "runs.log"
    job_id = add_job(batch, pool_id)
    tasks = [m.BatchTaskCreateOptions(id=f"t{i}", command_line=_marked("sleep 0.1"), environment_settings=_task_env(log))
             for i in range(60)]
    for start in range(0, len(tasks), 30):
        batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=tasks[start:start + 30]))
    wait_for(lambda: counts(batch, job_id)[2] >= 8, message="some tasks completed")
    os.kill(live_nodes.app.runtime.provider.pid_of(node_id), signal.SIGKILL)

    def done() -> bool:
        active, running, completed, succeeded, failed = counts(batch, job_id)
        assert active + running + completed == 60 and running <= 4 and failed == 0
        return completed == 60

    wait_for(done, 60, message="every task completed")
    assert counts(batch, job_id) == (0, 0, 60, 60, 0)
    _never_twice_at_once(_runs(log))
    requeued = [t for t in batch.list_tasks(job_id) if t.execution_info.requeue_count]
    assert 1 <= len(requeued) <= 4 and all(t.execution_info.retry_count == 0 for t in requeued)
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node idle again")


def test_hung_local_agent_is_killed_and_its_node_recovered(
        batch: BatchClient, pools: Pools, live_nodes: LiveServer, tmp_path: Path) -> None:
    """A local agent that stops calling (SIGSTOP) is killed with what it ran, after node_lost_after
    seconds (3 in the tests); its task runs again on the node's new agent."""
    pool_id, (node_id,) = pools.add(1)
    job_id, run_pid = _first_run(batch, pool_id, tmp_path)
    agent_pid = live_nodes.app.runtime.provider.pid_of(node_id)
    os.kill(agent_pid, signal.SIGSTOP)
    wait_for(lambda: batch.get_task(job_id, "t").state == "completed", 30, message="the task completed")
    assert not alive(run_pid) and not alive(agent_pid)
    info = batch.get_task(job_id, "t").execution_info
    assert (info.exit_code, info.requeue_count, info.retry_count) == (0, 1, 0)
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node idle again")
    assert live_nodes.app.runtime.provider.pid_of(node_id) not in (None, agent_pid)


def test_unusable_local_node_can_be_rebooted_and_reimaged(
        batch: BatchClient, pools: Pools, live_nodes: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = live_nodes.app.runtime.provider
    pool_id, (node_id,) = pools.add(1)
    root = supervisor.node_root(node_id)
    (root / "shared" / "keep").write_text("survives a reboot, not a reimage")
    # as if its agents kept dying: the node waits (unusable) instead of getting a new agent by itself
    monkeypatch.setattr(supervisor, "_note_exit", lambda node_ids, lived: supervisor._backoff.update(
        {n: (9, time.monotonic() + 3600) for n in node_ids}))
    for option in ("reboot", "reimage"):
        os.kill(supervisor.pid_of(node_id), signal.SIGKILL)
        wait_for(lambda: batch.get_node(pool_id, node_id).state == "unusable", message="the node unusable")
        time.sleep(0.5)
        assert batch.get_node(pool_id, node_id).state == "unusable"
        if option == "reboot":
            batch.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"),
                                    polling_interval=1).result(timeout=30)
        else:
            batch.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"),
                                     polling_interval=1).result(timeout=30)
        wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message=f"idle after the {option}")
        assert (root / "shared" / "keep").exists() == (option == "reboot")


# -- remote agents ---------------------------------------------------------------------------------


class Proxy:
    """A TCP relay to the server that can be cut (packets vanish, as in a network partition) and healed."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    if not self.cut.is_set():
                        (b if source is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def heal(self) -> None:
        """Traffic flows again; the connections that hung during the cut are reset."""
        with self.lock:
            hung, self.sockets = self.sockets, []
        for sock in hung:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.cut.clear()

    def close(self) -> None:
        self.listener.close()
        self.heal()


@pytest.fixture
def remote(batch: BatchClient, live_nodes: LiveServer, tmp_path: Path) -> Iterator:
    """start(url) -> (pool id, node id, agent process): a pool whose one node is a remote agent's."""
    started: list[tuple[str, subprocess.Popen]] = []

    def start(server_url: str) -> tuple[str, str, subprocess.Popen]:
        pool_id = uid("remote")
        batch.create_pool(m.BatchPoolCreateOptions(
            id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=0,
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
                node_agent_sku_id="batch.node.ubuntu 22.04")))
        agent = subprocess.Popen(
            [sys.executable, "-m", "openbatch", "agent", "--server", server_url, "--account", live_nodes.account,
             "--key", live_nodes.key, "--pool", pool_id, "--nodes", "1", "--root", str(tmp_path / pool_id)],
            env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append((pool_id, agent))
        nodes = wait_for(lambda: (ns := list(batch.list_nodes(pool_id))) and ns[0].state == "idle" and ns,
                         message="the remote node idle")
        return pool_id, nodes[0].id, agent

    yield start
    for pool_id, agent in started:
        if agent.poll() is None:
            agent.send_signal(signal.SIGCONT)
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(10)
            except subprocess.TimeoutExpired:
                agent.kill()
        try:
            batch.begin_delete_pool(pool_id, polling_interval=0)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def _first_run(batch: BatchClient, pool_id: str, tmp_path: Path) -> tuple[str, int]:
    """A job with task "t" in the pool: its first run writes its pid and sleeps, a later run finishes at
    once. Returns (job id, pid of the first run) once that run started."""
    job_id = add_job(batch, pool_id)
    pid_file = tmp_path / f"{job_id}.pid"
    script = f'if [ -e {pid_file} ]; then exit 0; fi; echo $$ > {pid_file}; exec sleep 60'
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=sh(script)))
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), message="the first run started")
    return job_id, int(pid_file.read_text())


def test_partitioned_remote_agent_stops_its_runs_before_the_server_runs_them_elsewhere(
        batch: BatchClient, live_nodes: LiveServer, remote, tmp_path: Path) -> None:
    host, port = live_nodes.url.removeprefix("http://").split(":")
    proxy = Proxy((host, int(port)))
    try:
        pool_id, node_id, _ = remote(proxy.url)
        job_id, pid = _first_run(batch, pool_id, tmp_path)
        proxy.cut.set()
        wait_for(lambda: batch.get_node(pool_id, node_id).state == "unusable", 15, message="the node unusable")
        # the server gives the task back to the queue only after the agent killed its run
        assert batch.get_task(job_id, "t").state == "active"
        assert not alive(pid), "the partitioned agent must have stopped its run by now"
        proxy.heal()
        wait_for(lambda: batch.get_task(job_id, "t").state == "completed", 30,
                 message="the task completed on the node once it was back")
        info = batch.get_task(job_id, "t").execution_info
        assert (info.exit_code, info.requeue_count, info.retry_count) == (0, 1, 0)
        wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node idle again")
        assert counts(batch, job_id) == (0, 0, 1, 1, 0)
    finally:
        proxy.close()


def test_hung_remote_agent_node_unusable_then_rebooted_back(
        batch: BatchClient, live_nodes: LiveServer, remote, tmp_path: Path) -> None:
    pool_id, node_id, agent = remote(live_nodes.url)
    job_id, pid = _first_run(batch, pool_id, tmp_path)
    agent.send_signal(signal.SIGSTOP)
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "unusable", 15, message="the hung agent's node unusable")
    assert batch.get_task(job_id, "t").state == "active"   # nowhere else to run: it waits
    # an unusable node can be rebooted: it restarts when its agent calls again
    batch.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=1)
    assert batch.get_node(pool_id, node_id).state == "rebooting"
    agent.send_signal(signal.SIGCONT)
    wait_for(lambda: batch.get_task(job_id, "t").state == "completed", 30, message="the task completed")
    assert not alive(pid), "the run from before the hang was killed by the node's reboot"
    info = batch.get_task(job_id, "t").execution_info
    assert (info.exit_code, info.requeue_count) == (0, 1)
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node idle again")
