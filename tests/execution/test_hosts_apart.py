"""An agent on a host that really is apart: its own network namespace and address, reaching the server
only over a veth link (tests/support/netns.py), on both stores through azure-batch 15.1.

The server's address, the Files API tunnelled through the agent's own connection, a partition of the
link (the agent fences itself before the server runs its task elsewhere) and the reconnect after it
are exercised across a real network boundary. Skipped, saying why, without root or iproute2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_node_loss import alive
from tests.execution.test_task_lifecycle import _image
from tests.sdk.conftest import uid
from tests.support.live import LiveServer
from tests.support.netns import Host, netns_unavailable, other_host

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def apart(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec  # type: ignore[no-untyped-def]
          ) -> Iterator[tuple[LiveServer, Host]]:
    """A server listening on this side of a veth link, and the host on the other side."""
    from tests.conftest import _serve

    why = netns_unavailable()
    if why:
        pytest.skip(why)
    with other_host() as host:
        yield from ((server, host) for server in _serve(request, tmp_path_factory, spec, "apart",
                                                       node_provider="local", node_lost_after=3.0,
                                                       host=host.server_ip))


@pytest.fixture
def remote_pool(apart: tuple[LiveServer, Host], tmp_path: Path) -> Iterator[tuple[BatchClient, str, str, Host]]:
    """(client, pool id, node id, host): a pool whose one node is hosted by an agent on the other host."""
    server, host = apart
    batch = BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(server.account, server.key))
    pool_id = uid("apart")
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=0,
                                               virtual_machine_configuration=_image()))
    agent = subprocess.Popen(
        host.command([sys.executable, "-m", "openbatch", "agent", "--server", server.url, "--account",
                      server.account, "--key", server.key, "--pool", pool_id, "--nodes", "1",
                      "--root", str(tmp_path / "host")]),
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        nodes = wait_for(lambda: (ns := list(batch.list_nodes(pool_id))) and ns[0].state == "idle" and ns,
                         timeout=30, message="the other host's node idle")
        yield batch, pool_id, nodes[0].id, host
    finally:
        host.heal()
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
        batch.begin_delete_pool(pool_id, polling_interval=0)


def test_a_node_on_another_host_runs_tasks_and_its_files_come_through_its_agent(
        remote_pool: tuple[BatchClient, str, str, Host]) -> None:
    batch, pool_id, node_id, host = remote_pool
    job_id = uid("apart-job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    script = "ip -4 -o addr show | grep -v ' lo ' | awk '{print $4}'; echo $AZ_BATCH_ACCOUNT_URL"
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="where", command_line=f"/bin/sh -c \"{script}\""))
    task = wait_for(lambda: (t := batch.get_task(job_id, "where")).state == "completed" and t, timeout=30,
                    message="the task to complete")
    assert task.execution_info.exit_code == 0 and task.node_info.node_id == node_id
    address, url = b"".join(batch.download_task_file(job_id, "where", "stdout.txt")).decode().split()
    assert address.startswith(host.ip + "/")   # it ran on the other host
    assert url.startswith(f"http://{host.server_ip}:")
    names = {f.name for f in batch.list_node_files(pool_id, node_id, recursive=False)}
    assert {"shared", "startup", "workitems"} <= names


def test_a_partition_between_the_hosts(remote_pool: tuple[BatchClient, str, str, Host], tmp_path: Path) -> None:
    batch, pool_id, node_id, host = remote_pool
    job_id = uid("cut")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    pid_file = tmp_path / "first.pid"
    script = f"if [ -e {pid_file} ]; then exit 0; fi; echo $$ > {pid_file}; exec sleep 60"
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=f"/bin/sh -c '{script}'"))
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), message="the first run"))
    host.cut()
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "unusable", 15, message="the node unusable")
    assert batch.get_task(job_id, "t").state == "active"   # back in the queue, nowhere else to run
    assert not alive(pid), "the cut-off agent must have stopped its run before the server gave it back"
    host.heal()
    task = wait_for(lambda: (t := batch.get_task(job_id, "t")).state == "completed" and t, 30,
                    message="the task to complete once the hosts are joined again")
    assert (task.execution_info.exit_code, task.execution_info.requeue_count) == (0, 1)
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node idle again")
