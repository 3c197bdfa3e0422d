"""End to end through azure-batch 14.2 (msrest): every implemented operation once.

The point is the msrest client's own serialisation, deserialisation and paging
against this server: models built from our JSON, BatchErrorException built from our
BatchError bodies, msrest Paged following our absolute ``odata.nextLink``, and the
client-side chunking of ``add_collection``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from azure.batch import BatchServiceClient
from azure.batch import models as m

from tests.sdk14.conftest import uid

IMAGE = m.ImageReference(
    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest",
)
NODE_AGENT = "batch.node.ubuntu 22.04"


def batch_error(call: Callable[[], Any], status: int, code: str) -> m.BatchErrorException:
    """Run ``call``; it must raise BatchErrorException with this HTTP status and error code."""
    with pytest.raises(m.BatchErrorException) as info:
        call()
    exc = info.value
    got_status = exc.response.status_code
    got_code = exc.error.code if exc.error is not None else None
    assert (got_status, got_code) == (status, code), (
        f"expected {status} {code}, got {got_status} {got_code}: {exc.response.text!r}"
    )
    assert exc.error.message is not None and exc.error.message.value, "BatchError.message.value is empty"
    return exc


def add_pool(client: BatchServiceClient, pool_id: str | None = None, **kwargs: Any) -> str:
    pool_id = pool_id or uid("p14")
    client.pool.add(m.PoolAddParameter(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=IMAGE, node_agent_sku_id=NODE_AGENT,
        ),
        target_dedicated_nodes=0,
        **kwargs,
    ))
    return pool_id


def add_job(client: BatchServiceClient, job_id: str | None = None, **kwargs: Any) -> str:
    job_id = job_id or uid("j14")
    client.job.add(m.JobAddParameter(id=job_id, pool_info=m.PoolInformation(pool_id=uid("nopool")), **kwargs))
    return job_id


def simple_tasks(prefix: str, count: int) -> list[m.TaskAddParameter]:
    return [m.TaskAddParameter(id=f"{prefix}{i:05d}", command_line="/bin/true") for i in range(count)]


# -- pools ----------------------------------------------------------------------------------


def test_pool_lifecycle(client: BatchServiceClient) -> None:
    pool_id = add_pool(
        client,
        display_name="sdk14 pool",
        start_task=m.StartTask(
            command_line="/bin/sh -c 'echo hi'", wait_for_success=True, max_task_retry_count=1,
        ),
        metadata=[m.MetadataItem(name="owner", value="sdk14")],
        task_slots_per_node=2,
    )

    pool = client.pool.get(pool_id)
    assert isinstance(pool, m.CloudPool)
    assert (pool.id, pool.display_name, pool.vm_size) == (pool_id, "sdk14 pool", "standard_d2s_v3")
    assert pool.state == m.PoolState.active
    assert pool.allocation_state == m.AllocationState.steady
    assert pool.target_dedicated_nodes == 0 and pool.current_dedicated_nodes == 0
    assert pool.task_slots_per_node == 2
    vmc = pool.virtual_machine_configuration
    assert vmc.node_agent_sku_id == NODE_AGENT
    assert (vmc.image_reference.publisher, vmc.image_reference.sku) == ("canonical", "22_04-lts")
    assert pool.start_task.command_line == "/bin/sh -c 'echo hi'" and pool.start_task.wait_for_success is True
    assert [(i.name, i.value) for i in pool.metadata] == [("owner", "sdk14")]
    assert pool.e_tag and pool.last_modified and pool.creation_time and pool.url.endswith(f"/pools/{pool_id}")

    assert client.pool.exists(pool_id) is True
    assert client.pool.exists(uid("missing")) is False

    listed = list(client.pool.list(m.PoolListOptions(filter=f"id eq '{pool_id}'")))
    assert [p.id for p in listed] == [pool_id]
    assert isinstance(listed[0], m.CloudPool) and listed[0].vm_size == "standard_d2s_v3"

    client.pool.patch(pool_id, m.PoolPatchParameter(metadata=[m.MetadataItem(name="stage", value="patched")]))
    pool = client.pool.get(pool_id)
    assert [(i.name, i.value) for i in pool.metadata] == [("stage", "patched")]
    assert pool.start_task.command_line == "/bin/sh -c 'echo hi'", "patch without startTask must keep it"

    client.pool.update_properties(pool_id, m.PoolUpdatePropertiesParameter(
        certificate_references=[], application_package_references=[], metadata=[],
    ))
    pool = client.pool.get(pool_id)
    assert not pool.metadata, "updateProperties with metadata=[] must clear it"
    assert pool.start_task is None, "updateProperties without startTask must remove it"

    client.pool.resize(pool_id, m.PoolResizeParameter(target_dedicated_nodes=0, target_low_priority_nodes=0))
    pool = client.pool.get(pool_id)
    assert pool.allocation_state == m.AllocationState.steady

    batch_error(lambda: client.pool.stop_resize(pool_id), 409, "OperationInvalidForCurrentState")
    batch_error(lambda: client.pool.remove_nodes(pool_id, m.NodeRemoveParameter(node_list=["tvm-nope"])),
                404, "NodeNotFound")
    batch_error(lambda: client.pool.enable_auto_scale(pool_id, auto_scale_formula="$TargetDedicatedNodes=(0;"),
                400, "AutoScalingFormulaSyntaxError")

    assert list(client.compute_node.list(pool_id)) == []
    batch_error(lambda: client.compute_node.get(pool_id, "tvm-nope"), 404, "NodeNotFound")

    client.pool.delete(pool_id)
    assert client.pool.exists(pool_id) is False
    batch_error(lambda: client.pool.get(pool_id), 404, "PoolNotFound")


def test_account_and_applications(client: BatchServiceClient) -> None:
    pool_id = add_pool(client)
    counts = {c.pool_id: c for c in client.account.list_pool_node_counts()}
    assert pool_id in counts
    dedicated = counts[pool_id].dedicated
    assert isinstance(dedicated, m.NodeCounts) and dedicated.total == 0 and dedicated.idle == 0

    images = list(client.account.list_supported_images())
    assert images and all(isinstance(i, m.ImageInformation) for i in images)
    assert all(i.node_agent_sku_id and i.image_reference and i.os_type for i in images)

    assert list(client.application.list()) == []
    batch_error(lambda: client.application.get("no-such-app"), 404, "ApplicationNotFound")
    client.pool.delete(pool_id)


# -- jobs -----------------------------------------------------------------------------------


def test_job_lifecycle(client: BatchServiceClient) -> None:
    job_id = uid("j14")
    client.job.add(m.JobAddParameter(
        id=job_id,
        display_name="sdk14 job",
        priority=10,
        pool_info=m.PoolInformation(pool_id=uid("nopool")),
        constraints=m.JobConstraints(max_task_retry_count=2),
        metadata=[m.MetadataItem(name="k", value="v")],
        uses_task_dependencies=True,
        job_preparation_task=m.JobPreparationTask(command_line="/bin/true"),
        job_release_task=m.JobReleaseTask(command_line="/bin/true"),
    ))

    job = client.job.get(job_id)
    assert isinstance(job, m.CloudJob)
    assert (job.id, job.display_name, job.priority) == (job_id, "sdk14 job", 10)
    assert job.state == m.JobState.active
    assert job.constraints.max_task_retry_count == 2
    assert [(i.name, i.value) for i in job.metadata] == [("k", "v")]
    assert job.uses_task_dependencies is True
    assert job.job_preparation_task.id == "jobpreparation"
    assert job.job_preparation_task.wait_for_success is True
    assert job.job_preparation_task.rerun_on_node_reboot_after_success is True
    assert job.job_release_task.id == "jobrelease"
    assert job.max_parallel_tasks == -1, "14.2 always sends maxParallelTasks=-1"
    assert job.e_tag and job.url.endswith(f"/jobs/{job_id}")

    listed = list(client.job.list(m.JobListOptions(filter=f"id eq '{job_id}'")))
    assert [j.id for j in listed] == [job_id]

    client.job.patch(
        job_id, m.JobPatchParameter(priority=20, metadata=[m.MetadataItem(name="k2", value="v2")]),
    )
    job = client.job.get(job_id)
    assert job.priority == 20 and [(i.name, i.value) for i in job.metadata] == [("k2", "v2")]
    assert job.constraints.max_task_retry_count == 2, "patch without constraints must keep them"

    client.job.disable(job_id, m.DisableJobOption.requeue)
    assert client.job.get(job_id).state in (m.JobState.disabling, m.JobState.disabled)

    # Update replaces the job's updatable properties; the pool may change only while the job is disabled.
    client.job.update(
        job_id, m.JobUpdateParameter(pool_info=m.PoolInformation(pool_id="other-pool"), priority=5),
    )
    job = client.job.get(job_id)
    assert job.priority == 5 and job.pool_info.pool_id == "other-pool"
    assert not job.metadata, "update without metadata must clear it"

    client.job.enable(job_id)
    assert client.job.get(job_id).state in (m.JobState.enabling, m.JobState.active)

    client.job.terminate(job_id, terminate_reason="sdk14-done")
    job = client.job.get(job_id)
    # No node ran the preparation task, so no release task is owed: the job completes at once.
    assert job.state == m.JobState.completed, job.state
    assert job.execution_info.terminate_reason == "sdk14-done"
    assert job.execution_info.end_time is not None

    client.job.delete(job_id)
    try:
        state = client.job.get(job_id).state
    except m.BatchErrorException as exc:
        assert (exc.response.status_code, exc.error.code) == (404, "JobNotFound"), exc.response.text
    else:
        assert state == m.JobState.deleting, f"a deleted job is gone or deleting, not {state}"


def test_task_counts_are_weighted_by_required_slots(client: BatchServiceClient) -> None:
    job_id = add_job(client)
    client.task.add(job_id, m.TaskAddParameter(id="one", command_line="/bin/true"))
    client.task.add(job_id, m.TaskAddParameter(id="two", command_line="/bin/true", required_slots=2))
    result = client.job.get_task_counts(job_id)
    assert isinstance(result, m.TaskCountsResult)
    tc, sc = result.task_counts, result.task_slot_counts
    assert (tc.active, tc.running, tc.completed, tc.succeeded, tc.failed) == (2, 0, 0, 0, 0)
    assert (sc.active, sc.running, sc.completed, sc.succeeded, sc.failed) == (3, 0, 0, 0, 0)
    batch_error(lambda: client.job.get_task_counts(uid("missing")), 404, "JobNotFound")


def test_preparation_and_release_status(client: BatchServiceClient) -> None:
    with_prep = add_job(client, job_preparation_task=m.JobPreparationTask(command_line="/bin/true"))
    assert list(client.job.list_preparation_and_release_task_status(with_prep)) == []

    without = add_job(client)
    batch_error(lambda: list(client.job.list_preparation_and_release_task_status(without)),
                409, "JobPreparationTaskNotSpecified")
    batch_error(lambda: list(client.job.list_preparation_and_release_task_status(uid("missing"))),
                404, "JobNotFound")


def test_conditional_requests(client: BatchServiceClient) -> None:
    job_id = add_job(client)
    etag = client.job.get(job_id).e_tag

    # msrest: Job_Get accepts only 200, so the 304 (no body, as documented) becomes a BatchErrorException
    # holding an empty BatchError model (code None); the SDK does not crash on it.
    with pytest.raises(m.BatchErrorException) as info:
        client.job.get(job_id, m.JobGetOptions(if_none_match=etag))
    assert info.value.response.status_code == 304
    assert info.value.response.content == b""
    assert isinstance(info.value.error, m.BatchError) and info.value.error.code is None
    assert "Code: None" in str(info.value)

    # A non-matching If-None-Match returns the job.
    assert client.job.get(job_id, m.JobGetOptions(if_none_match="0xBAD")).id == job_id

    bad_match = m.JobPatchOptions(if_match="0xBAD")
    batch_error(lambda: client.job.patch(job_id, m.JobPatchParameter(priority=1), bad_match),
                412, "ConditionNotMet")
    client.job.patch(job_id, m.JobPatchParameter(priority=1), m.JobPatchOptions(if_match=etag))
    assert client.job.get(job_id).priority == 1


# -- tasks ----------------------------------------------------------------------------------


def test_task_lifecycle(client: BatchServiceClient) -> None:
    job_id = add_job(client, job_preparation_task=m.JobPreparationTask(command_line="/bin/true"))
    client.task.add(job_id, m.TaskAddParameter(
        id="t1", command_line="/bin/sh -c 'echo hi'", display_name="first",
        environment_settings=[m.EnvironmentSetting(name="A", value="1")],
        constraints=m.TaskConstraints(max_task_retry_count=1),
    ))

    task = client.task.get(job_id, "t1")
    assert isinstance(task, m.CloudTask)
    assert (task.id, task.display_name, task.command_line) == ("t1", "first", "/bin/sh -c 'echo hi'")
    assert task.state == m.TaskState.active
    assert [(e.name, e.value) for e in task.environment_settings] == [("A", "1")]
    assert task.constraints.max_task_retry_count == 1
    assert task.required_slots == 1
    assert task.e_tag and task.url.endswith(f"/jobs/{job_id}/tasks/t1")

    client.task.update(job_id, "t1", constraints=m.TaskConstraints(max_task_retry_count=3))
    assert client.task.get(job_id, "t1").constraints.max_task_retry_count == 3

    subtasks = client.task.list_subtasks(job_id, "t1")
    assert isinstance(subtasks, m.CloudTaskListSubtasksResult) and not subtasks.value

    batch_error(lambda: list(client.file.list_from_task(job_id, "t1")), 409, "TaskFilesUnavailable")

    client.task.terminate(job_id, "t1")
    task = client.task.get(job_id, "t1")
    assert task.state == m.TaskState.completed
    assert task.execution_info.result == m.TaskExecutionResult.failure
    assert task.execution_info.failure_info.code == "TaskEnded"

    client.task.reactivate(job_id, "t1")
    task = client.task.get(job_id, "t1")
    assert task.state == m.TaskState.active

    batch_error(lambda: client.task.add(job_id, m.TaskAddParameter(id="t1", command_line="/bin/true")),
                409, "TaskExists")
    prep_named = m.TaskAddParameter(id="jobpreparation", command_line="/bin/true")
    batch_error(lambda: client.task.add(job_id, prep_named),
                409, "TaskIdSameAsJobPreparationTask")
    batch_error(lambda: client.task.add(job_id, m.TaskAddParameter(
        id="dep", command_line="/bin/true", depends_on=m.TaskDependencies(task_ids=["t1"]))),
        400, "TaskDependenciesNotSpecifiedOnJob")

    client.task.delete(job_id, "t1")
    batch_error(lambda: client.task.get(job_id, "t1"), 404, "TaskNotFound")


def test_add_collection_chunks_of_100(client: BatchServiceClient) -> None:
    job_id = add_job(client)
    result = client.task.add_collection(job_id, simple_tasks("c", 250), threads=4)
    assert len(result.value) == 250
    assert all(r.status == m.TaskAddStatus.success for r in result.value)
    assert all(r.e_tag and r.location.endswith(f"/tasks/{r.task_id}") for r in result.value)
    assert sorted(r.task_id for r in result.value) == [f"c{i:05d}" for i in range(250)]

    ids = [t.id for t in client.task.list(job_id, m.TaskListOptions(select="id"))]
    assert sorted(ids) == [f"c{i:05d}" for i in range(250)], "every task exactly once"
    assert client.job.get_task_counts(job_id).task_counts.active == 250

    # Re-adding: 14.2 treats TaskExists in a collection as success: nothing raised, nothing duplicated.
    client.task.add_collection(job_id, simple_tasks("c", 5))
    assert client.job.get_task_counts(job_id).task_counts.active == 250


def test_task_list_paging(client: BatchServiceClient) -> None:
    job_id = add_job(client)
    client.task.add_collection(job_id, simple_tasks("t", 1100), threads=4)
    client.task.terminate(job_id, "t00007")

    all_tasks = list(client.task.list(job_id))
    assert len(all_tasks) == 1100, "msrest paging must follow the absolute odata.nextLink to the end"
    assert len({t.id for t in all_tasks}) == 1100

    paged = client.task.list(
        job_id, m.TaskListOptions(filter="state eq 'active'", select="id,state", max_results=100),
    )
    sizes, seen, links = [], [], []
    while True:  # msrest Paged: advance_page() GETs next_link verbatim, StopIteration after the last page
        try:
            page = paged.advance_page()
        except StopIteration:
            break
        sizes.append(len(page))
        seen.extend(page)
        links.append(paged.next_link)
    assert all(link.startswith("http://") for link in links[:-1]) and links[-1] is None, links
    assert len(seen) == 1099 and len({t.id for t in seen}) == 1099
    assert "t00007" not in {t.id for t in seen}
    assert all(s <= 100 for s in sizes) and len(sizes) >= 11
    assert all(t.state == m.TaskState.active for t in seen)
    assert all(t.command_line is None and t.url is None for t in seen), "$select=id,state drops the rest"


# -- files ----------------------------------------------------------------------------------


def test_file_operations_before_anything_ran(client: BatchServiceClient) -> None:
    """No node has run the task and the pool has no node: every file operation says so."""
    job_id = add_job(client)
    client.task.add(job_id, m.TaskAddParameter(id="f1", command_line="/bin/true"))
    batch_error(lambda: list(client.file.list_from_task(job_id, "f1", recursive=True)),
                409, "TaskFilesUnavailable")
    batch_error(lambda: b"".join(client.file.get_from_task(job_id, "f1", "stdout.txt")),
                409, "TaskFilesUnavailable")
    batch_error(lambda: client.file.delete_from_task(job_id, "f1", "wd/out.txt"), 409, "TaskFilesUnavailable")
    # HEAD: the status is all there is (no body to carry a code).
    with pytest.raises(m.BatchErrorException) as info:
        client.file.get_properties_from_task(job_id, "f1", "stdout.txt")
    assert info.value.response.status_code == 409

    pool_id = add_pool(client)
    batch_error(lambda: list(client.file.list_from_compute_node(pool_id, "tvm-nope")), 404, "NodeNotFound")
    batch_error(lambda: b"".join(client.file.get_from_compute_node(pool_id, "tvm-nope", "startup/out.txt")),
                404, "NodeNotFound")
    batch_error(lambda: client.file.delete_from_compute_node(pool_id, "tvm-nope", "startup/stdout.txt"),
                404, "NodeNotFound")
    with pytest.raises(m.BatchErrorException) as info:
        client.file.get_properties_from_compute_node(pool_id, "tvm-nope", "startup/stdout.txt")
    assert info.value.response.status_code == 404
    client.pool.delete(pool_id)


# -- headers and types as msrest deserialises them ------------------------------------------


def test_raw_response_headers_and_types(client: BatchServiceClient) -> None:
    import datetime as dt

    job_id = uid("j14")
    request_id = "6f0c3a52-1111-4222-8333-444455556666"
    raw = client.job.add(
        m.JobAddParameter(id=job_id, pool_info=m.PoolInformation(pool_id="p")),
        m.JobAddOptions(client_request_id=request_id, return_client_request_id=True),
        raw=True,
    )
    assert raw.response.status_code == 201
    headers = raw.headers  # msrest deserialised these: Last-Modified as rfc-1123
    assert headers["ETag"] and headers["DataServiceId"].endswith(f"/jobs/{job_id}")
    assert isinstance(headers["Last-Modified"], dt.datetime)
    assert headers["request-id"]
    assert headers["client-request-id"] == request_id

    raw = client.job.get(job_id, raw=True)
    job = raw.output
    assert raw.headers["ETag"] == job.e_tag
    assert isinstance(raw.headers["Last-Modified"], dt.datetime)
    assert isinstance(job.state, m.JobState) and isinstance(job.on_all_tasks_complete, m.OnAllTasksComplete)
    stamps = (job.creation_time, job.last_modified, job.state_transition_time, job.execution_info.start_time)
    for stamp in stamps:
        assert isinstance(stamp, dt.datetime) and stamp.tzinfo is not None
    assert abs(raw.headers["Last-Modified"] - job.last_modified) < dt.timedelta(seconds=1)


def test_job_schedule_lifecycle(client: BatchServiceClient) -> None:
    schedule_id = uid("s14")
    spec = m.JobSpecification(pool_info=m.PoolInformation(pool_id=uid("nopool")), priority=3)
    client.job_schedule.add(m.JobScheduleAddParameter(id=schedule_id, schedule=m.Schedule(), job_specification=spec))
    assert client.job_schedule.exists(schedule_id) is True
    schedule = client.job_schedule.get(schedule_id)
    assert schedule.state == m.JobScheduleState.active
    assert schedule.execution_info.recent_job.id == f"{schedule_id}:job-1"
    assert [job.id for job in client.job.list_from_job_schedule(schedule_id)] == [f"{schedule_id}:job-1"]
    assert schedule_id in [s.id for s in client.job_schedule.list(
        m.JobScheduleListOptions(filter=f"id eq '{schedule_id}'"))]
    client.job_schedule.patch(schedule_id, m.JobSchedulePatchParameter(metadata=[m.MetadataItem(name="a", value="b")]))
    client.job_schedule.update(schedule_id, m.JobScheduleUpdateParameter(schedule=m.Schedule(), job_specification=spec))
    client.job_schedule.disable(schedule_id)
    client.job_schedule.enable(schedule_id)
    client.job_schedule.terminate(schedule_id)
    assert client.job_schedule.get(schedule_id).state == m.JobScheduleState.completed
    batch_error(lambda: client.job_schedule.disable(schedule_id), 409, "JobScheduleCompleted")
    client.job_schedule.delete(schedule_id)
    assert client.job_schedule.exists(schedule_id) is False
    batch_error(lambda: client.job_schedule.get(schedule_id), 404, "JobScheduleNotFound")


def test_autoscale(client: BatchServiceClient) -> None:
    pool_id = add_pool(client)
    client.pool.enable_auto_scale(pool_id, auto_scale_formula="$TargetDedicatedNodes = 0; x = 2 * 3;")
    pool = client.pool.get(pool_id)
    assert pool.enable_auto_scale is True and "x=6" in pool.auto_scale_run.results
    run = client.pool.evaluate_auto_scale(pool_id, "$TargetLowPriorityNodes = 1;")
    assert run.results.startswith("$TargetDedicatedNodes=0;$TargetLowPriorityNodes=1;")
    batch_error(lambda: client.pool.evaluate_auto_scale(pool_id, "$TargetDedicatedNodes = (;"), 400,
                "AutoScalingFormulaSyntaxError")
    client.pool.disable_auto_scale(pool_id)
    assert client.pool.get(pool_id).enable_auto_scale is False


def test_pool_usage_metrics(client: BatchServiceClient) -> None:
    assert isinstance(list(client.pool.list_usage_metrics()), list)
    batch_error(lambda: list(client.pool.list_usage_metrics(m.PoolListUsageMetricsOptions(filter="poolId ne 'x'"))),
                400, "InvalidQueryParameterValue")


def test_certificates(client: BatchServiceClient) -> None:
    from tests.support.certificates import PASSWORD, self_signed

    thumbprint, pfx, cer = self_signed()
    client.certificate.add(m.CertificateAddParameter(thumbprint=thumbprint, thumbprint_algorithm="sha1", data=pfx,
                                                     certificate_format="pfx", password=PASSWORD))
    certificate = client.certificate.get("sha1", thumbprint)
    assert certificate.state == m.CertificateState.active and certificate.public_data == cer
    assert certificate.url.endswith(f"certificates(thumbprintAlgorithm=sha1,thumbprint={thumbprint})")
    assert thumbprint in [c.thumbprint for c in client.certificate.list(
        m.CertificateListOptions(filter="state eq 'active'"))]
    batch_error(lambda: client.certificate.add(m.CertificateAddParameter(
        thumbprint=thumbprint, thumbprint_algorithm="sha1", data=cer, certificate_format="cer")), 409, "CertificateExists")
    batch_error(lambda: client.certificate.add(m.CertificateAddParameter(
        thumbprint="0" * 40, thumbprint_algorithm="sha1", data=cer, certificate_format="cer")), 400, "InvalidPropertyValue")
    batch_error(lambda: client.certificate.cancel_deletion("sha1", thumbprint), 409, "CertificateStateActive")
    client.certificate.delete("sha1", thumbprint)
    batch_error(lambda: client.certificate.get("sha1", thumbprint), 404, "CertificateNotFound")
    batch_error(lambda: client.certificate.delete("sha1", thumbprint), 404, "CertificateNotFound")
