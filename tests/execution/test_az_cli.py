"""The Azure CLI (`az batch`, azure-cli 2.67 in .venv-az, installed by scripts/test.sh) against a live server
with real local nodes, on both stores: node users, container pools and tasks, and a multi-instance task, as a
user of Azure Batch would drive them from a shell. Skipped, saying why, without the CLI."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.docker import build_test_image, docker_unavailable
from tests.support.live import LiveServer

AZ = Path(__file__).resolve().parents[2] / ".venv-az" / "bin" / "az"
pytestmark = pytest.mark.skipif(not AZ.exists(), reason="the Azure CLI is not installed (scripts/test.sh puts it "
                                                        "in .venv-az)")

IMAGE = {"imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
         "nodeAgentSKUId": "batch.node.ubuntu 22.04"}


class Az:
    """``az batch ...`` bound to the server by the CLI's own environment variables."""

    def __init__(self, server: LiveServer, home: Path) -> None:
        self.env = {**os.environ, "AZURE_BATCH_ACCOUNT": server.account, "AZURE_BATCH_ACCESS_KEY": server.key,
                    "AZURE_BATCH_ENDPOINT": server.url, "AZURE_CONFIG_DIR": str(home),
                    "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
                    # (the CLI's Batch client sends azure-batch 14's user agent only; msrest appends this to it,
                    # so the coverage table tells the CLI's calls apart: tests/support/live.py)
                    "AZURE_HTTP_USER_AGENT": "AZURECLI/2.67.0"}

    def __call__(self, *args: str) -> Any:
        done = subprocess.run([str(AZ), "batch", *args, "--output", "json"], env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    def json_file(self, directory: Path, body: dict) -> str:
        path = directory / f"{uid('body')}.json"
        path.write_text(json.dumps(body))
        return str(path)


@pytest.fixture
def az(live_nodes: LiveServer, tmp_path: Path) -> Az:
    return Az(live_nodes, tmp_path / "az-home")


def _idle_nodes(az: Az, pool_id: str, count: int) -> list[dict]:
    return wait_for(lambda: (nodes := az("node", "list", "--pool-id", pool_id)) and len(nodes) == count
                    and all(n["state"] == "idle" for n in nodes) and nodes, timeout=60, message="idle nodes")


def _completed(az: Az, job_id: str, task_id: str) -> dict:
    return wait_for(lambda: (task := az("task", "show", "--job-id", job_id, "--task-id", task_id))["state"]
                    == "completed" and task, timeout=60, message=f"{task_id} completed")


def _stdout(az: Az, job_id: str, task_id: str, directory: Path) -> str:
    target = directory / f"{uid('out')}.txt"
    az("task", "file", "download", "--job-id", job_id, "--task-id", task_id, "--file-path", "stdout.txt",
       "--destination", str(target))
    return target.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="node users are real accounts: the agent must be root")
def test_node_users(az: Az, tmp_path: Path) -> None:
    pool_id = uid("azpool")
    az("pool", "create", "--json-file", az.json_file(tmp_path, {
        "id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "virtualMachineConfiguration": IMAGE}))
    try:
        [node] = _idle_nodes(az, pool_id, 1)
        name = uid("az")[:16]
        az("node", "user", "create", "--pool-id", pool_id, "--node-id", node["id"], "--name", name,
           "--password", "Pa55-word", "--is-admin", "--expiry-time", "2030-01-01T00:00:00Z")
        entry = pwd.getpwnam(name)
        assert entry.pw_gecos.startswith("openbatch node")
        az("node", "user", "reset", "--pool-id", pool_id, "--node-id", node["id"], "--user-name", name,
           "--password", "Other-pa55")
        assert subprocess.run(["chage", "-l", name], capture_output=True, text=True).returncode == 0
        az("node", "user", "delete", "--pool-id", pool_id, "--node-id", node["id"], "--user-name", name, "--yes")
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
    finally:
        az("pool", "delete", "--pool-id", pool_id, "--yes")


@pytest.mark.skipif(docker_unavailable() is not None, reason=docker_unavailable() or "")
def test_a_container_task(az: Az, tmp_path: Path) -> None:
    image = build_test_image()
    pool_id, job_id = uid("azpool"), uid("azjob")
    az("pool", "create", "--json-file", az.json_file(tmp_path, {
        "id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "virtualMachineConfiguration": {
            **IMAGE, "containerConfiguration": {"type": "dockerCompatible", "containerImageNames": [image]}}}))
    try:
        _idle_nodes(az, pool_id, 1)
        az("job", "create", "--id", job_id, "--pool-id", pool_id)
        az("task", "create", "--job-id", job_id, "--json-file", az.json_file(tmp_path, {
            "id": "where", "containerSettings": {"imageName": image},
            "commandLine": "/bin/sh -c 'test -e /etc/debian_version && echo on-the-host || echo in-a-container'"}))
        task = _completed(az, job_id, "where")
        assert task["executionInfo"]["result"] == "success", task
        assert task["executionInfo"]["containerInfo"]["containerId"]
        assert _stdout(az, job_id, "where", tmp_path) == "in-a-container\n"
    finally:
        az("pool", "delete", "--pool-id", pool_id, "--yes")


def test_a_multi_instance_task(az: Az, tmp_path: Path) -> None:
    pool_id, job_id = uid("azmpi"), uid("azjob")
    az("pool", "create", "--json-file", az.json_file(tmp_path, {
        "id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 2, "taskSlotsPerNode": 1,
        "enableInterNodeCommunication": True, "virtualMachineConfiguration": IMAGE}))
    try:
        _idle_nodes(az, pool_id, 2)
        az("job", "create", "--id", job_id, "--pool-id", pool_id)
        az("task", "create", "--job-id", job_id, "--json-file", az.json_file(tmp_path, {
            "id": "mpi", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_HOST_LIST'",
            "multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "/bin/true"}}))
        task = _completed(az, job_id, "mpi")
        assert task["executionInfo"]["result"] == "success", task
        assert _stdout(az, job_id, "mpi", tmp_path) == "127.0.0.1,127.0.0.1\n"
        # (azure-batch 14, under the CLI, answers ListSubtasks as one CloudTaskListSubtasksResult)
        [subtask] = az("task", "subtask", "list", "--job-id", job_id, "--task-id", "mpi")["value"]
        assert (subtask["id"], subtask["state"], subtask["result"]) == (1, "completed", "success")
    finally:
        az("pool", "delete", "--pool-id", pool_id, "--yes")
