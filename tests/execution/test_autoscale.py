"""Autoscale on real local nodes (azure-batch 15.1): a pool whose formula follows its queue grows when
tasks wait and shrinks to nothing when they are done. The live server samples pool metrics every
second and lets formulas be evaluated every 2 seconds (development settings)."""

from __future__ import annotations

import datetime

from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import _image, drop_pool, make_job, sh
from tests.sdk.conftest import uid

FOLLOW_THE_QUEUE = """
// the most tasks waiting or running in the last 3 seconds, at most 2 nodes
pending = $PendingTasks.GetSample(TimeInterval_Second * 3);
$TargetDedicatedNodes = len(pending) == 0 ? 0 : min(2, max(pending));
$NodeDeallocationOption = taskcompletion;
"""


def test_an_autoscaled_pool_grows_with_its_queue_and_shrinks_when_idle(batch: BatchClient) -> None:
    pool_id = uid("scaled")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_image(), enable_auto_scale=True,
        auto_scale_formula=FOLLOW_THE_QUEUE, auto_scale_evaluation_interval=datetime.timedelta(seconds=2)))
    try:
        assert batch.get_pool(pool_id).current_dedicated_nodes == 0
        job_id = make_job(batch, pool_id)
        batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
            m.BatchTaskCreateOptions(id=f"t{i}", command_line=sh("sleep 1")) for i in range(4)]))
        wait_for(lambda: batch.get_pool(pool_id).current_dedicated_nodes == 2, timeout=20,
                 message="the pool grows to 2 nodes")
        run = batch.get_pool(pool_id).auto_scale_run
        assert "$TargetDedicatedNodes=2" in run.results and "pending=[" in run.results

        def host_metrics() -> m.AutoScaleRun | None:   # the agents' hosts report CPU, memory and disk
            found = batch.evaluate_pool_auto_scale(pool_id, m.BatchPoolEvaluateAutoScaleOptions(
                auto_scale_formula="cpu = avg($CPUPercent.GetSample(1)); memory = avg($MemoryBytes.GetSample(1));\n"
                                   "disk = avg($DiskBytes.GetSample(1)); $TargetDedicatedNodes = 2;"))
            return found if found.error is None else None

        results = dict(item.split("=", 1) for item in wait_for(host_metrics, timeout=10).results.split(";"))
        assert 0 <= float(results["cpu"]) <= 100 and float(results["memory"]) > 0 and float(results["disk"]) > 0

        def all_done() -> bool:
            return all(task.state == "completed" for task in batch.list_tasks(job_id))

        wait_for(all_done, timeout=30, message="the tasks ran")
        assert all(task.execution_info.exit_code == 0 for task in batch.list_tasks(job_id))
        wait_for(lambda: batch.get_pool(pool_id).current_dedicated_nodes == 0, timeout=20,
                 message="the idle pool shrinks to nothing")
        assert "$TargetDedicatedNodes=0" in batch.get_pool(pool_id).auto_scale_run.results
    finally:
        drop_pool(batch, pool_id)
