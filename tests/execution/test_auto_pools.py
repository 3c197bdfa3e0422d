"""Auto pools end to end on real local nodes, through azure-batch 15.1: a job that brings its own pool."""

from __future__ import annotations

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.exceptions import ResourceNotFoundError

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import _image
from tests.sdk.conftest import error_values, expect_failure, uid


def auto_pool(prefix: str | None = "ap", keep_alive: bool = False, nodes: int = 1,
              **pool: object) -> m.BatchPoolInfo:
    options = {"target_dedicated_nodes": nodes, "task_slots_per_node": 2, **pool}
    spec = m.BatchPoolSpecification(vm_size="standard_d2s_v3", virtual_machine_configuration=_image(), **options)
    return m.BatchPoolInfo(auto_pool_specification=m.BatchAutoPoolSpecification(
        auto_pool_id_prefix=prefix, pool_lifetime_option="job", keep_alive=keep_alive, pool=spec))


def pool_gone(batch: BatchClient, pool_id: str) -> bool:
    try:
        batch.get_pool(pool_id)
    except ResourceNotFoundError:
        return True
    return False


def test_a_job_runs_on_its_auto_pool_which_goes_with_it(batch: BatchClient) -> None:
    job_id = uid("auto")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=auto_pool()))
    job = batch.get_job(job_id)
    pool_id = job.execution_info.pool_id
    assert pool_id.startswith("ap_") and len(pool_id) == 3 + 36
    assert job.pool_info.pool_id is None and job.pool_info.auto_pool_specification.auto_pool_id_prefix == "ap"
    pool = batch.get_pool(pool_id)
    assert (pool.vm_size, pool.target_dedicated_nodes, pool.task_slots_per_node) == ("standard_d2s_v3", 1, 2)
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true") for i in range(4)]))
    batch.update_job(job_id, m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    wait_for(lambda: batch.get_job(job_id).state == "completed", timeout=60, message="the job to complete")
    assert {t.node_info.pool_id for t in batch.list_tasks(job_id)} == {pool_id}
    assert all(t.execution_info.result == "success" for t in batch.list_tasks(job_id))
    wait_for(lambda: pool_gone(batch, pool_id), timeout=30, message="the auto pool to be deleted")


def test_keep_alive_keeps_the_pool_and_delete_takes_it(batch: BatchClient) -> None:
    kept, dropped = uid("keep"), uid("drop")
    batch.create_job(m.BatchJobCreateOptions(id=kept, pool_info=auto_pool(keep_alive=True, nodes=0)))
    batch.create_job(m.BatchJobCreateOptions(id=dropped, pool_info=auto_pool(prefix=None, nodes=0)))
    kept_pool = batch.get_job(kept).execution_info.pool_id
    dropped_pool = batch.get_job(dropped).execution_info.pool_id
    assert len(dropped_pool) == 36   # a GUID without a prefix
    batch.begin_terminate_job(kept, BatchJobTerminateOptions(termination_reason="done"), polling_interval=0)
    batch.begin_delete_job(dropped, polling_interval=0)
    wait_for(lambda: batch.get_job(kept).state == "completed", message="the kept job to complete")
    wait_for(lambda: pool_gone(batch, dropped_pool), message="the deleted job's pool to go")
    assert batch.get_pool(kept_pool).state == "active"
    batch.begin_delete_pool(kept_pool, polling_interval=0)


@pytest.mark.parametrize("change, where", [
    ({"task_slots_per_node": 0}, "poolInfo/autoPoolSpecification/pool/taskSlotsPerNode"),
    ({"resize_timeout": "PT1M"}, "poolInfo/autoPoolSpecification/pool/resizeTimeout"),
    ({"enable_auto_scale": True, "auto_scale_formula": "$TargetDedicatedNodes=(1;", "target_dedicated_nodes": None},
     "poolInfo/autoPoolSpecification/pool/autoScaleFormula"),
])
def test_a_pool_spec_that_pool_add_would_refuse_is_refused(batch: BatchClient, change: dict, where: str) -> None:
    job_id = uid("bad")
    pools_before = {p.id for p in batch.list_pools()}
    error = expect_failure(lambda: batch.create_job(m.BatchJobCreateOptions(
        id=job_id, pool_info=auto_pool(**change))), 400, None)
    assert error_values(error)["PropertyName"] == where
    expect_failure(lambda: batch.get_job(job_id), 404, "JobNotFound")
    assert {p.id for p in batch.list_pools()} == pools_before


def test_pool_lifetime_job_schedule_is_for_schedules(batch: BatchClient) -> None:
    info = auto_pool()
    info.auto_pool_specification.pool_lifetime_option = "jobschedule"
    error = expect_failure(lambda: batch.create_job(m.BatchJobCreateOptions(id=uid("sched"), pool_info=info)),
                           400, "InvalidPropertyValue")
    assert error_values(error)["PropertyName"] == "poolInfo/autoPoolSpecification/poolLifetimeOption"
