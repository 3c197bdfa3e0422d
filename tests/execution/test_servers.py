"""Several ``openbatch serve`` processes on one PostgreSQL database, driven through azure-batch 15.1: any of
them answers any request, one leads (scheduler, local agents), and when the leader is killed with kill -9
another takes over within seconds; nothing is lost, nothing runs twice at once, counts stay exact."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from azure.batch import models as m

from tests.execution.conftest import wait_for
from tests.execution.test_node_loss import _marked, _never_twice_at_once, _runs
from tests.execution.test_task_lifecycle import alive
from tests.execution.test_server_kill import ServeProcess, _add, _all_done, _client, _counts, _pool_and_job
from tests.support.live import ACCOUNT, KEY, free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


class Servers(list[ServeProcess]):
    def leader(self) -> ServeProcess:
        """The server that says it leads (the first to, if a later one took over)."""
        leading = [s for s in self if s.process and s.process.poll() is None
                   and "this server leads" in s.log.read_text()]
        assert leading, "no server leads"
        return leading[-1]


@pytest.fixture
def servers(tmp_path: Path, postgres_databases) -> Iterator[Servers]:  # type: ignore[no-untyped-def]
    database = postgres_databases()
    made = Servers(ServeProcess(tmp_path / f"server{i}", database, free_port()) for i in range(2))
    try:
        for server in made:   # one after the other: the first leads
            server.start()
        yield made
    finally:
        for server in made:
            server.stop()


def test_either_server_answers_and_the_leader_runs_the_tasks(servers: Servers, tmp_path: Path) -> None:
    first, second = servers
    assert servers.leader() is first
    assert "this server leads" not in second.log.read_text()
    a, b = _client(first), _client(second)
    job_id = _pool_and_job(a, 2, 2)          # the pool and job through the first ...
    log = tmp_path / "runs.log"
    _add(b, job_id, 30, log)                 # ... the tasks through the second
    _all_done(b, job_id, 30)
    assert _counts(a, job_id) == _counts(b, job_id) == (0, 0, 30, 30, 0)
    _never_twice_at_once(_runs(log))
    assert len(_runs(log)) == 30
    # a task's files through the server that does not host its node's agent (asked through the database)
    a.create_task(job_id, m.BatchTaskCreateOptions(id="hello", command_line="/bin/echo hello from the task"))
    wait_for(lambda: b.get_task(job_id, "hello").state == "completed", 30, message="the hello task completed")
    assert b"".join(b.download_task_file(job_id, "hello", "stdout.txt")) == b"hello from the task\n"
    node_id = b.get_task(job_id, "hello").node_info.node_id
    assert "stdout.txt" in {f.name for f in b.list_task_files(job_id, "hello")}
    assert b.get_node(("p"), node_id).state in ("idle", "running")
    # a change made through one server is seen by the other at once
    b.update_job(job_id, m.BatchJobUpdateOptions(priority=7))
    assert a.get_job(job_id).priority == 7


def test_the_leader_killed_the_other_server_takes_over(servers: Servers, tmp_path: Path) -> None:
    first, second = servers
    a, b = _client(first), _client(second)
    job_id = _pool_and_job(b, 2, 2)
    log = tmp_path / "runs.log"
    _add(b, job_id, 60, log)
    wait_for(lambda: _counts(b, job_id)[2] >= 6, 60, interval=0.1, message="some tasks completed")
    assert first.process is not None
    its_agents = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(first.process.pid)], capture_output=True,
                                                     text=True).stdout.split()]
    assert len(its_agents) == 2   # (--nodes-per-agent 1)
    first.kill()
    killed = time.monotonic()
    wait_for(lambda: "this server leads" in second.log.read_text(), 15, interval=0.05, message="the second leads")
    took_over = time.monotonic() - killed
    assert took_over < 10, took_over
    _all_done(b, job_id, 60)
    _never_twice_at_once(_runs(log))
    assert len(_runs(log)) == 60
    wait_for(lambda: not any(alive(pid) for pid in its_agents), 15, message="the dead leader's agents gone")
    assert _counts(b, job_id) == (0, 0, 60, 60, 0)
    wait_for(lambda: sorted(n.state for n in b.list_nodes("p")) == ["idle", "idle"], 30, message="both nodes idle")
    del a


def test_an_agent_given_both_servers_moves_to_the_one_left(servers: Servers, tmp_path: Path) -> None:
    first, second = servers
    b = _client(second)
    b.create_pool(m.BatchPoolCreateOptions(
        id="remote", vm_size="standard_d2s_v3", target_dedicated_nodes=0,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    b.create_job(m.BatchJobCreateOptions(id="rj", pool_info=m.BatchPoolInfo(pool_id="remote")))
    agent = subprocess.Popen(
        [sys.executable, "-m", "openbatch", "agent", "--server", f"{first.url},{second.url}", "--account", ACCOUNT,
         "--key", KEY, "--pool", "remote", "--nodes", "1", "--root", str(tmp_path / "host")],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: [n.state for n in b.list_nodes("remote")] == ["idle"], 30, message="the remote node idle")
        log = tmp_path / "runs.log"
        env = [m.EnvironmentSetting(name="RUNS_LOG", value=str(log))]
        b.create_task("rj", m.BatchTaskCreateOptions(id="before", command_line=_marked("true"),
                                                     environment_settings=env))
        wait_for(lambda: b.get_task("rj", "before").state == "completed", 30, message="the first task completed")
        first.kill()
        b.create_task("rj", m.BatchTaskCreateOptions(id="after", command_line=_marked("true"),
                                                     environment_settings=env))
        wait_for(lambda: b.get_task("rj", "after").state == "completed", 30, message="a task after the kill completed")
        assert [n.state for n in b.list_nodes("remote")] == ["idle"]   # the same node, never lost
        assert agent.poll() is None
        assert sorted(_runs(log)) == ["after", "before"]
    finally:
        agent.terminate()
        agent.wait(20)
