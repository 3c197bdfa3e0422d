"""A user's Azure Batch sample, unmodified: pool, job with preparation and release, tasks, wait, read back."""

from __future__ import annotations

from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.live import LiveServer


def _image() -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy",
                                                sku="22_04-lts"),
        node_agent_sku_id="batch.node.ubuntu 22.04")


def test_the_sample_runs(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, job_id = uid("pool"), uid("job")
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                               virtual_machine_configuration=_image(), target_dedicated_nodes=2,
                                               task_slots_per_node=4))
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(pool_id)) and len(list(batch.list_nodes(pool_id))) == 2,
             message="2 idle nodes")
    batch.create_job(m.BatchJobCreateOptions(
        id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/sh -c 'echo prepared > $AZ_BATCH_NODE_SHARED_DIR/prep-$AZ_BATCH_JOB_ID'"),
        job_release_task=m.BatchJobReleaseTask(command_line="/bin/sh -c 'echo released'")))
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"t{i}", command_line=f"/bin/sh -c 'echo task {i} on $AZ_BATCH_NODE_ID'")
        for i in range(100)]))

    def all_done() -> bool:
        counts = batch.get_job_task_counts(job_id).task_counts
        return counts.completed == 100

    wait_for(all_done, message="100 completed tasks")
    counts = batch.get_job_task_counts(job_id)
    assert (counts.task_counts.succeeded, counts.task_counts.failed, counts.task_counts.active) == (100, 0, 0)
    task = batch.get_task(job_id, "t7")
    assert task.state == "completed" and task.execution_info.exit_code == 0
    out = b"".join(batch.download_task_file(job_id, "t7", "stdout.txt")).decode()
    assert out == f"task 7 on {task.node_info.node_id}\n"
    status = list(batch.list_job_preparation_and_release_task_status(job_id))
    assert 1 <= len(status) <= 2
    for entry in status:
        assert entry.job_preparation_task_execution_info.state == "completed"
        assert entry.job_preparation_task_execution_info.exit_code == 0
    poller = batch.begin_terminate_job(job_id, BatchJobTerminateOptions(termination_reason="done"), polling_interval=1)
    poller.result(timeout=30)
    assert batch.get_job(job_id).state == "completed"
    for entry in batch.list_job_preparation_and_release_task_status(job_id):
        assert entry.job_release_task_execution_info.state == "completed"
        assert entry.job_release_task_execution_info.exit_code == 0
