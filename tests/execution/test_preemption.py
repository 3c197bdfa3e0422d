"""Rehearsing a spot preemption on real local nodes (azure-batch 15.1 and `openbatch preempt`): the
low-priority node's running task goes back to the queue, the node shows preempted and counts in
$PreemptedNodeCount, and when it comes back (3 s on the test server) the task runs to the end."""

from __future__ import annotations

import datetime
import subprocess
import sys

from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import _image, drop_pool, make_job, sh
from tests.sdk.conftest import uid
from tests.support.live import LiveServer


def preempt(live: LiveServer, pool_id: str, *nodes: str) -> str:
    done = subprocess.run([sys.executable, "-m", "openbatch", "preempt", "--server", live.url, "--account",
                           live.account, "--key", live.key, pool_id, *nodes], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_preempted_spot_node_requeues_its_task_and_comes_back(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id = uid("spot")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_image(), enable_auto_scale=True,
        auto_scale_formula="$TargetLowPriorityNodes = 1;",
        auto_scale_evaluation_interval=datetime.timedelta(minutes=10)))
    try:
        (node,) = wait_for(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"], timeout=30)
        assert node.is_dedicated is False and node.id.endswith("_p")
        pool = batch.get_pool(pool_id)
        assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (0, 1)
        job_id = make_job(batch, pool_id)
        batch.create_task(job_id, m.BatchTaskCreateOptions(id="work", command_line=sh("sleep 2; echo finished")))
        wait_for(lambda: batch.get_task(job_id, "work").state == "running", timeout=20)

        assert node.id in preempt(live_nodes, pool_id)
        assert batch.get_node(pool_id, node.id).state == "preempted"
        task = batch.get_task(job_id, "work")
        assert task.state in ("active", "running")   # requeued (it may already run again on the node back)
        counts = {c.pool_id: c for c in batch.list_pool_node_counts()}[pool_id]
        assert counts.low_priority.total == 1 and counts.dedicated.total == 0
        run = batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula="$TargetDedicatedNodes = $PreemptedNodeCount; $TargetLowPriorityNodes = 1;"))
        assert run.results.startswith("$TargetDedicatedNodes=1;")

        def finished() -> m.BatchTask | None:
            found = batch.get_task(job_id, "work")
            return found if found.state == "completed" else None

        task = wait_for(finished, timeout=30, message="the task runs again once its node is back")
        assert task.execution_info.exit_code == 0 and task.execution_info.requeue_count == 1
        assert batch.get_node(pool_id, node.id).state in ("idle", "running")
    finally:
        drop_pool(batch, pool_id)


def test_only_low_priority_nodes_can_be_preempted(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id = uid("dedi")
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                               virtual_machine_configuration=_image(), target_dedicated_nodes=1))
    try:
        (node,) = wait_for(lambda: [n for n in batch.list_nodes(pool_id) if n.state == "idle"], timeout=30)
        done = subprocess.run([sys.executable, "-m", "openbatch", "preempt", "--server", live_nodes.url, "--account",
                               live_nodes.account, "--key", live_nodes.key, pool_id, node.id],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "OperationNotValidOnNode" in done.stderr
        assert "preempted 0 node(s)" in preempt(live_nodes, pool_id)   # no low-priority node: none
        assert batch.get_node(pool_id, node.id).state == "idle"
    finally:
        drop_pool(batch, pool_id)
