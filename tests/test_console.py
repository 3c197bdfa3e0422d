"""`openbatch status` and `openbatch watch` as an operator runs them: real processes against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import add_tasks, drop_pool, make_job, make_pool, task
from tests.support.live import LiveServer

SRC = str(Path(__file__).resolve().parent.parent / "src")


@pytest.fixture
def batch(live_nodes: LiveServer) -> BatchClient:
    return BatchClient(endpoint=live_nodes.url, credential=AzureNamedKeyCredential(live_nodes.account, live_nodes.key))


def openbatch(server: LiveServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openbatch", *args, "--server", server.url, "--account",
                           server.account, "--key", server.key], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"})


def test_status_shows_each_pool_with_its_nodes_slots_and_tasks(live_nodes: LiveServer, batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=2, slots=1)
    try:
        job_id = make_job(batch, pool_id)
        add_tasks(batch, job_id, task("slow", "sleep 30"), task("fails", "exit 2"), task("waits", "sleep 30"),
                  task("waits2", "sleep 30"))
        wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.failed == 1, message="a task failed")
        wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.running == 2, message="two running")
        shown = openbatch(live_nodes, "status")
        assert shown.returncode == 0, shown.stderr
        row = next(line for line in shown.stdout.splitlines() if pool_id in line)
        assert "2 running (target 2)" in row and "2/2" in row, row
        cells = [cell.strip() for cell in row.strip().strip("│").split("│")]
        assert cells[-4:] == ["1", "2", "0", "1"], row   # active, running, succeeded, failed
        assert "jobs" in shown.stdout and "tasks" in shown.stdout
    finally:
        drop_pool(batch, pool_id)


def test_watch_follows_a_job_to_its_end_and_fails_when_a_task_failed(live_nodes: LiveServer,
                                                                      batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=1, slots=2)
    try:
        good = make_job(batch, pool_id)
        add_tasks(batch, good, *[task(f"t{i}", "sleep 0.2") for i in range(4)])
        batch.update_job(good, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
        watched = openbatch(live_nodes, "watch", good)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert "4/4" in watched.stdout and "all 4 task(s) succeeded" in watched.stdout

        bad = make_job(batch, pool_id)   # left active when its tasks end: watch ends with them
        add_tasks(batch, bad, task("ok", "exit 0"), task("no", "exit 1"))
        watched = openbatch(live_nodes, "watch", bad)
        assert watched.returncode == 1, watched.stdout + watched.stderr
        assert "1 of 2 task(s) failed" in watched.stdout

        missing = openbatch(live_nodes, "watch", "no-such-job")
        assert missing.returncode != 0 and "404 JobNotFound" in missing.stderr
    finally:
        drop_pool(batch, pool_id)
