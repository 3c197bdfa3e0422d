"""kill -9 of the server process, as a real ``openbatch serve`` on both stores: nothing is lost, nothing runs
twice at once. And one server per SQLite database: a second one refuses to start, naming the live one, and
takes over as soon as that one is killed (several share PostgreSQL: test_servers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_node_loss import _marked, _never_twice_at_once, _runs
from tests.execution.test_task_lifecycle import alive
from tests.support.live import ACCOUNT, KEY, free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


class ServeProcess:
    """``openbatch serve`` in a subprocess on one data directory, database and port."""

    def __init__(self, data_dir: Path, database_url: str | None, port: int) -> None:
        self.data_dir, self.database_url, self.port = data_dir, database_url, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self.log = data_dir / "serve.log"

    def start(self, *, wait: bool = True) -> subprocess.Popen:
        args = [sys.executable, "-m", "openbatch", "serve", "--port", str(self.port), "--data-dir",
                str(self.data_dir), "--account", ACCOUNT, "--key", KEY, "--nodes-per-agent", "1"]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, env={**os.environ, "PYTHONPATH": SRC}, stdout=log, stderr=log)
        if wait:
            wait_for(self._ready, 30, message="the server answering")
        return self.process

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/pools", timeout=1).status_code in (200, 403)
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_databases")() if request.param == "postgres" else None


@pytest.fixture
def serve(tmp_path: Path, database: str | None) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path / "data", database, free_port())
    try:
        yield server
    finally:
        server.stop()


def _client(server: ServeProcess) -> BatchClient:
    return BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(ACCOUNT, KEY))


def _pool_and_job(batch: BatchClient, nodes: int, slots: int) -> str:
    batch.create_pool(m.BatchPoolCreateOptions(
        id="p", vm_size="standard_d2s_v3", target_dedicated_nodes=nodes, task_slots_per_node=slots,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    batch.create_job(m.BatchJobCreateOptions(id="j", pool_info=m.BatchPoolInfo(pool_id="p")))
    return "j"


def _add(batch: BatchClient, job_id: str, count: int, log: Path) -> None:
    env = [m.EnvironmentSetting(name="RUNS_LOG", value=str(log))]
    tasks = [m.BatchTaskCreateOptions(id=f"t{i:03d}", command_line=_marked("sleep 0.2"), environment_settings=env)
             for i in range(count)]
    for start in range(0, count, 50):
        result = batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=tasks[start:start + 50]))
        assert all(r.status == "success" for r in result.result_values)


def _counts(batch: BatchClient, job_id: str) -> tuple[int, int, int, int, int]:
    c = batch.get_job_task_counts(job_id).task_counts
    return c.active, c.running, c.completed, c.succeeded, c.failed


def _all_done(batch: BatchClient, job_id: str, count: int) -> None:
    def done() -> bool:
        active, running, completed, succeeded, failed = _counts(batch, job_id)
        assert active + running + completed == count and failed == 0
        return completed == count

    wait_for(done, 90, interval=0.2, message=f"all {count} tasks completed")
    assert _counts(batch, job_id) == (0, 0, count, count, 0)


def test_server_killed_three_times_mid_run_loses_nothing(serve: ServeProcess, tmp_path: Path) -> None:
    serve.start()
    batch = _client(serve)
    job_id = _pool_and_job(batch, 2, 2)
    log = tmp_path / "runs.log"
    _add(batch, job_id, 80, log)
    completed = 0
    for _ in range(3):
        wait_for(lambda: _counts(batch, job_id)[2] >= completed + 6, 60, interval=0.1,
                 message="more tasks completed")
        serve.kill()
        serve.start()
        completed = _counts(batch, job_id)[2]
    _all_done(batch, job_id, 80)
    _never_twice_at_once(_runs(log))
    assert len(_runs(log)) == 80
    wait_for(lambda: sorted(n.state for n in batch.list_nodes("p")) == ["idle", "idle"], 30,
             message="both nodes idle")


def test_a_second_server_on_the_database_refuses_then_takes_over(serve: ServeProcess, tmp_path: Path) -> None:
    if serve.database_url:
        pytest.skip("PostgreSQL takes several servers at once: tests/execution/test_servers.py")
    serve.start()
    batch = _client(serve)
    job_id = _pool_and_job(batch, 1, 2)
    log = tmp_path / "runs.log"
    _add(batch, job_id, 40, log)
    wait_for(lambda: _counts(batch, job_id)[2] >= 4, 30, message="some tasks completed")
    # same database (and, on SQLite, the same data directory), another port
    second = ServeProcess(serve.data_dir, serve.database_url, free_port())
    process = second.start(wait=False)
    assert process.wait(30) == 1
    message = second.log.read_text()
    assert "another openbatch server is using this database" in message, message
    assert f"pid {serve.process.pid}" in message and serve.url in message, message
    its_agents = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(serve.process.pid)], capture_output=True,
                                                     text=True).stdout.split()]
    assert its_agents
    serve.kill()
    began = time.monotonic()
    second.start()
    assert time.monotonic() - began < 15
    try:
        batch = _client(second)
        _all_done(batch, job_id, 40)
        _never_twice_at_once(_runs(log))
        # the local agents of the killed server end by themselves (they must not wait for it forever)
        wait_for(lambda: not any(alive(pid) for pid in its_agents), 15, message="the killed server's agents gone")
    finally:
        second.stop()
