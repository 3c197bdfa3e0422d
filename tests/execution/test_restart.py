"""The server restarts: the database is the truth, local nodes come back, remote agents reconnect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.support.live import LiveServer, free_port, start_server

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _client(server: LiveServer) -> BatchClient:
    return BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(server.account, server.key))


def _pool(batch: BatchClient, pool_id: str, nodes: int) -> None:
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=nodes,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))


def test_restart_brings_local_nodes_back_and_requeues_their_tasks(tmp_path: Path, spec) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_server(tmp_path, None, "sqlite", spec, node_provider="local", port=port, node_lost_after=3.0)
    try:
        batch = _client(server)
        _pool(batch, "p", 1)
        batch.create_job(m.BatchJobCreateOptions(id="j", pool_info=m.BatchPoolInfo(pool_id="p")))
        batch.create_task("j", m.BatchTaskCreateOptions(
            id="t", command_line="/bin/sh -c 'test -f $AZ_BATCH_NODE_SHARED_DIR/../../done || sleep 60'"))
        wait_for(lambda: batch.get_task("j", "t").state == "running", message="task running")
    finally:
        server.stop()
    (tmp_path / "nodes" / "done").write_text("let the next run finish at once")
    server = start_server(tmp_path, None, "sqlite", spec, node_provider="local", port=port, node_lost_after=3.0)
    try:
        batch = _client(server)
        task = wait_for(lambda: (t := batch.get_task("j", "t")).state == "completed" and t, timeout=30,
                        message="task completed after the restart")
        assert task.execution_info.exit_code == 0
        assert task.execution_info.requeue_count == 1 and task.execution_info.retry_count == 0
        assert [n.state for n in batch.list_nodes("p")] == ["idle"]
        counts = batch.get_job_task_counts("j").task_counts
        assert (counts.active, counts.running, counts.completed, counts.succeeded) == (0, 0, 1, 1)
    finally:
        server.stop()


def test_a_remote_agent_reconnects_after_a_restart(tmp_path: Path, spec) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_server(tmp_path / "data", None, "sqlite", spec, node_provider="local", port=port,
                          node_lost_after=5.0)
    agent = None
    try:
        batch = _client(server)
        _pool(batch, "remote", 0)
        agent = subprocess.Popen(
            [sys.executable, "-m", "openbatch", "agent", "--server", server.url, "--account", server.account,
             "--key", server.key, "--pool", "remote", "--nodes", "1", "--root", str(tmp_path / "agent")],
            env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: [n.state for n in batch.list_nodes("remote")] == ["idle"], message="remote node idle")
        server.stop()
        server = start_server(tmp_path / "data", None, "sqlite", spec, node_provider="local", port=port,
                              node_lost_after=5.0)
        batch = _client(server)
        batch.create_job(m.BatchJobCreateOptions(id="after", pool_info=m.BatchPoolInfo(pool_id="remote")))
        batch.create_task("after", m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        wait_for(lambda: batch.get_task("after", "t").state == "completed", timeout=30,
                 message="the reconnected agent ran a task")
        assert [n.state for n in batch.list_nodes("remote")] == ["idle"]
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
        server.stop()


def test_local_agents_stop_when_their_server_process_dies(tmp_path: Path) -> None:
    """A server killed outright (no graceful stop) leaves no agent behind."""
    import time

    import httpx

    from openbatch.auth.client import SharedKeyAuth
    from tests.support.live import ACCOUNT, KEY

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "openbatch", "serve", "--port", str(port), "--data-dir", str(tmp_path),
         "--account", ACCOUNT, "--key", KEY],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=url, auth=SharedKeyAuth(ACCOUNT, KEY), params={"api-version": "2024-07-01.20.0"})
        wait_for(lambda: _answers(client), message="server up")
        client.post("/pools", json={"id": "p", "vmSize": "small", "targetDedicatedNodes": 1, "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04"}})
        wait_for(lambda: [n["state"] for n in client.get("/pools/p/nodes").json()["value"]] == ["idle"],
                 message="node idle")
        agents = _agents_of(server.pid)
        assert agents, "the server started an agent"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in agents) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in agents), "orphaned agents kept running"


def _answers(client) -> bool:  # type: ignore[no-untyped-def]
    try:
        return client.get("/pools").status_code == 200
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _agents_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"agent" in cmdline:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
