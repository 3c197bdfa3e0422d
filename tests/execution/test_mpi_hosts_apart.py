"""A multi-instance task across two hosts that really are apart (each its own network namespace and address,
routed through this machine; tests/support/netns.py): mpirun on the primary starts its ranks on the other
host through the launcher the pool's nodes are given (on Azure the pool sets up SSH between its nodes; here
the launcher enters the other host's namespace), and the ranks talk over TCP between the hosts. Through
azure-batch 15.1 on both stores; skipped, saying why, without root, iproute2 or Open MPI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_hosts_apart import SRC
from tests.execution.test_task_lifecycle import _image, read_file, sh, wait_completed
from tests.sdk.conftest import uid
from tests.support.live import LiveServer
from tests.support.netns import Host, netns_unavailable, other_host


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def two_hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec  # type: ignore[no-untyped-def]
              ) -> Iterator[tuple[LiveServer, Host, Host]]:
    """A server on this machine and two hosts apart that reach it, and each other, through it."""
    from tests.conftest import _serve

    why = netns_unavailable() or (None if shutil.which("mpirun") else "Open MPI is not installed (apt openmpi-bin)")
    if why:
        pytest.skip(why)
    with other_host() as first, other_host() as second:
        for host in (first, second):   # each host's way to the other: through this machine
            subprocess.run(host.command(["ip", "route", "add", "default", "via", host.server_ip]), check=True)
        yield from ((server, first, second) for server in _serve(
            request, tmp_path_factory, spec, "mpi-apart", node_provider="local", node_lost_after=5.0,
            host=first.server_ip))


def _launcher(path: Path, hosts: list[Host]) -> str:
    """What mpirun runs to start its daemon on another host (ssh's place): ``launcher HOST COMMAND...``."""
    cases = "".join(f"  {host.ip}) ns={host.name} ;;\n" for host in hosts)
    path.write_text(f'#!/bin/sh\nhost=$1; shift\ncase $host in\n{cases}  *) exit 255 ;;\nesac\n'
                    f'exec ip netns exec "$ns" /bin/sh -c "$*"\n')
    path.chmod(0o755)
    return str(path)


def test_mpirun_runs_ranks_on_both_hosts(two_hosts: tuple[LiveServer, Host, Host], tmp_path: Path) -> None:
    server, first, second = two_hosts
    batch = BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(server.account, server.key))
    pool_id = uid("mpi-apart")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=0, virtual_machine_configuration=_image(),
        enable_inter_node_communication=True, task_slots_per_node=1))
    agents = [subprocess.Popen(
        host.command([sys.executable, "-m", "openbatch", "agent", "--server", server.url, "--account",
                      server.account, "--key", server.key, "--pool", pool_id, "--nodes", "1",
                      "--root", str(tmp_path / host.name)]),
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for host in (first, second)]
    try:
        nodes = wait_for(lambda: (found := list(batch.list_nodes(pool_id))) and len(found) == 2
                         and all(n.state == "idle" for n in found) and found, timeout=30, message="two idle nodes")
        assert sorted(n.ip_address for n in nodes) == sorted([first.ip, second.ip])
        job_id = uid("mpi-apart-job")
        batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
        ranks = "echo rank $OMPI_COMM_WORLD_RANK on $(ip -4 -o addr show | grep -v \" lo \" | awk \"{print \\$4}\")"
        script = (f"mpirun --allow-run-as-root -host $(echo $AZ_BATCH_HOST_LIST | sed 's/[^,]*/&:1/g') -np 2 "
                  f"--mca btl tcp,self /bin/sh -c '{ranks}'")
        batch.create_task(job_id, m.BatchTaskCreateOptions(
            id="mpi", command_line=sh(script),
            # (root: the launcher enters the other host's namespace; on Azure an SSH login would)
            user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin")),
            environment_settings=[m.EnvironmentSetting(name="OMPI_MCA_plm_rsh_agent",
                                                       value=_launcher(tmp_path / "launcher", [first, second]))],
            multi_instance_settings=m.MultiInstanceSettings(number_of_instances=2, coordination_command_line="true")))
        done = wait_completed(batch, job_id, "mpi", timeout=60)
        out = read_file(batch, job_id, "mpi")
        assert done.execution_info.result == "success", (out, read_file(batch, job_id, "mpi", "stderr.txt"))
        primary = done.node_info.node_id
        primary_ip = next(n.ip_address for n in nodes if n.id == primary)
        other_ip = next(n.ip_address for n in nodes if n.id != primary)
        assert sorted(line for line in out.splitlines() if line.startswith("rank")) == [
            f"rank 0 on {primary_ip}/30", f"rank 1 on {other_ip}/30"], out
        [subtask] = batch.list_subtasks(job_id, "mpi")
        assert (subtask.node_info.node_id, subtask.state, subtask.result) == (
            next(n.id for n in nodes if n.id != primary), "completed", "success")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            try:
                agent.wait(10)
            except subprocess.TimeoutExpired:
                agent.kill()
        batch.begin_delete_pool(pool_id, polling_interval=0)
