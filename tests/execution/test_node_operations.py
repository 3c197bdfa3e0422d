"""ComputeNode DisableScheduling, EnableScheduling, Reboot and Reimage on real local nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import (  # not exported by 15.1
    BatchNodeDeallocateOptions, BatchNodeRebootOptions, BatchNodeReimageOptions)
from azure.core.exceptions import HttpResponseError

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.live import LiveServer


def _pool(batch: BatchClient, nodes: int = 1, slots: int = 1) -> tuple[str, list[str]]:
    pool_id = uid("pool")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=nodes, task_slots_per_node=slots,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    ids = wait_for(lambda: [n.id for n in batch.list_nodes(pool_id)] if all(
        n.state == "idle" for n in batch.list_nodes(pool_id)) and len(list(batch.list_nodes(pool_id))) == nodes
        else None, message="idle nodes")
    return pool_id, ids


def _state(batch: BatchClient, pool_id: str, node_id: str) -> str:
    return batch.get_node(pool_id, node_id).state


def test_disable_and_enable_scheduling(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    disable = m.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue")
    batch.disable_node_scheduling(pool_id, node_id, disable)
    node = batch.get_node(pool_id, node_id)
    assert node.scheduling_state == "disabled" and node.state == "offline"
    with pytest.raises(HttpResponseError) as again:
        batch.disable_node_scheduling(pool_id, node_id, disable)
    assert again.value.status_code == 409
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    assert batch.get_task(job_id, "t").state == "active"
    batch.enable_node_scheduling(pool_id, node_id)
    wait_for(lambda: batch.get_task(job_id, "t").state == "completed", message="task ran after enable")
    assert _state(batch, pool_id, node_id) == "idle"


def test_reboot_requeues_and_reruns_preparation(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch)
    job_id = uid("job")
    counter = f"$AZ_BATCH_NODE_SHARED_DIR/prep-{job_id}"
    batch.create_job(m.BatchJobCreateOptions(
        id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=m.BatchJobPreparationTask(command_line=f"/bin/sh -c 'echo x >> {counter}'")))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="/bin/sleep 30"))
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="long task running")
    poller = batch.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"),
                                     polling_interval=1)
    poller.result(timeout=30)
    task = wait_for(lambda: (t := batch.get_task(job_id, "long")).execution_info.requeue_count == 1 and t,
                    message="task requeued")
    assert task.execution_info.retry_count == 0
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="running again after reboot")
    shared = Path(live_nodes.app.runtime.provider.node_root(node_id)) / "shared" / f"prep-{job_id}"
    assert shared.read_text().count("x") == 2, "the preparation task ran again after the reboot"
    batch.terminate_task(job_id, "long")


def test_reimage_wipes_the_disk(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch)
    marker = Path(live_nodes.app.runtime.provider.node_root(node_id)) / "shared" / "marker"
    marker.write_text("before")
    batch.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"),
                             polling_interval=1).result(timeout=30)
    wait_for(lambda: _state(batch, pool_id, node_id) == "idle" and not marker.exists(), message="reimaged")
    node = batch.get_node(pool_id, node_id)
    assert node.last_boot_time is not None


def test_reboot_of_a_missing_node_is_404(batch: BatchClient) -> None:
    pool_id, _ = _pool(batch)
    with pytest.raises(HttpResponseError) as missing:
        batch.begin_reboot_node(pool_id, "tvmps_nope_d", BatchNodeRebootOptions(node_reboot_kind="requeue"))
    assert missing.value.status_code == 404 and missing.value.error.code == "NodeNotFound"


def test_job_max_wall_clock_time_terminates_the_job(batch: BatchClient) -> None:
    pool_id, _ = _pool(batch)
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id),
                                             constraints=m.BatchJobConstraints(max_wall_clock_time="PT2S")))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="/bin/sleep 30"))
    job = wait_for(lambda: (j := batch.get_job(job_id)).state == "completed" and j, timeout=15, message="job expired")
    assert job.execution_info.termination_reason == "MaxWallClockTimeExpiry"
    task = batch.get_task(job_id, "long")
    assert task.state == "completed" and task.execution_info.failure_info.code == "TaskEnded"


def test_retention_time_removes_the_task_directory(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch)
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="kept", command_line="/bin/sh -c 'echo hi'",
                                                       constraints=m.BatchTaskConstraints(retention_time="PT2S")))
    wait_for(lambda: batch.get_task(job_id, "kept").state == "completed", message="task done")
    task = batch.get_task(job_id, "kept")
    directory = Path(live_nodes.app.runtime.provider.node_root(node_id)) / task.node_info.task_root_directory
    assert (directory / "stdout.txt").exists()
    assert b"".join(batch.download_task_file(job_id, "kept", "stdout.txt")) == b"hi\n"
    wait_for(lambda: not directory.exists(), timeout=10, message="task directory removed after retention")
    with pytest.raises(HttpResponseError) as cleaned:
        list(batch.list_task_files(job_id, "kept"))
    assert cleaned.value.status_code == 409 and cleaned.value.error.code == "TaskFilesCleanedup"


def test_node_shows_its_recent_tasks(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"r{i}", command_line="/bin/true") for i in range(7)]))
    wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.completed == 7, message="7 done")
    node = batch.get_node(pool_id, node_id)
    assert node.total_tasks_run == 7 and node.total_tasks_succeeded == 7 and node.running_tasks_count == 0
    recent = node.recent_tasks
    assert len(recent) == 5 and {r.task_id for r in recent} <= {f"r{i}" for i in range(7)}
    assert all(r.job_id == job_id and r.task_state == "completed" and r.task_url.endswith(f"/tasks/{r.task_id}")
               for r in recent)
    listed = next(n for n in batch.list_nodes(pool_id) if n.id == node_id)
    assert len(listed.recent_tasks) == 5


def test_node_files_properties_and_delete(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch)
    (Path(live_nodes.app.runtime.provider.node_root(node_id)) / "shared" / "note.txt").write_text("12345")
    props = batch.get_node_file_properties(pool_id, node_id, "shared/note.txt")
    assert props.content_length == 5 and props.is_directory is False
    batch.delete_node_file(pool_id, node_id, "shared/note.txt")
    assert "shared/note.txt" not in {f.name for f in batch.list_node_files(pool_id, node_id, recursive=True)}


def test_stop_resize_while_a_node_waits_for_its_task(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line="/bin/sleep 30"))
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="task running")
    batch.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0,
                                                              node_deallocation_option="taskcompletion"),
                            polling_interval=1)  # not waited for: it ends only when the node has left
    assert batch.get_pool(pool_id).allocation_state == "resizing"
    assert _state(batch, pool_id, node_id) == "leavingpool"
    batch.begin_stop_pool_resize(pool_id, polling_interval=1).result(timeout=30)
    assert batch.get_pool(pool_id).allocation_state == "steady"
    batch.terminate_task(job_id, "long")
    wait_for(lambda: not list(batch.list_nodes(pool_id)), message="the leaving node left once its task ended")


def test_reboot_with_task_completion_waits_for_the_running_task(batch: BatchClient, live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch, slots=2)
    job_id = uid("job")
    gate = Path(live_nodes.app.runtime.provider.node_root(node_id)) / "shared" / f"gate-{job_id}"
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="first", command_line=f"/bin/sh -c 'while [ ! -f {gate} ]; do sleep 0.1; done'"))
    wait_for(lambda: batch.get_task(job_id, "first").state == "running", message="first running")
    poller = batch.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="taskcompletion"),
                                     polling_interval=1)
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="second", command_line="/bin/true"))
    assert batch.get_task(job_id, "second").state == "active", "a node about to reboot takes no new task"
    assert _state(batch, pool_id, node_id) == "running"
    gate.write_text("go")
    poller.result(timeout=30)  # 15.1's poller ends once the node is not 'rebooting': at once, here
    first = wait_for(lambda: (t := batch.get_task(job_id, "first")).state == "completed" and t, message="first done")
    assert first.state == "completed" and first.execution_info.exit_code == 0  # ran to its end, not requeued
    assert first.execution_info.requeue_count == 0
    wait_for(lambda: batch.get_task(job_id, "second").state == "completed", message="second ran after the reboot")


def test_deallocate_stops_a_node_with_its_disk_and_start_brings_it_back(batch: BatchClient,
                                                                        live_nodes: LiveServer) -> None:
    pool_id, [node_id] = _pool(batch)
    marker = Path(live_nodes.app.runtime.provider.node_root(node_id)) / "shared" / "marker"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("kept")
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="work", command_line="/bin/sh -c 'sleep 2'"))
    wait_for(lambda: batch.get_task(job_id, "work").state == "running", message="the task runs")
    batch.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"),
                                polling_interval=0).result(timeout=30)
    assert _state(batch, pool_id, node_id) == "deallocated"
    task = batch.get_task(job_id, "work")
    assert task.state == "active" and task.execution_info.requeue_count == 1
    counts = {c.pool_id: c for c in batch.list_pool_node_counts()}[pool_id]
    assert counts.dedicated.deallocated == 1
    with pytest.raises(HttpResponseError) as again:   # (azure-batch 15.1 cannot send it without options)
        batch.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="requeue"),
                                    polling_interval=0)
    assert again.value.status_code == 409
    assert batch.get_task(job_id, "work").state == "active"      # a deallocated node takes no task
    batch.begin_start_node(pool_id, node_id, polling_interval=0).result(timeout=30)
    wait_for(lambda: batch.get_task(job_id, "work").state == "completed", message="the task runs once it is back")
    assert batch.get_task(job_id, "work").execution_info.exit_code == 0
    assert marker.read_text() == "kept"                             # its disk was kept
    with pytest.raises(HttpResponseError) as idle:
        batch.begin_start_node(pool_id, node_id, polling_interval=0)
    assert idle.value.status_code == 409 and idle.value.response.json()["code"] == "OperationNotValidOnNode"


def test_deallocate_with_task_completion_waits_for_the_running_task(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="work", command_line="/bin/sh -c 'sleep 1'"))
    wait_for(lambda: batch.get_task(job_id, "work").state == "running", message="the task runs")
    batch.begin_deallocate_node(pool_id, node_id, BatchNodeDeallocateOptions(node_deallocate_option="taskcompletion"),
                                polling_interval=0)
    assert _state(batch, pool_id, node_id) == "deallocating"
    wait_for(lambda: _state(batch, pool_id, node_id) == "deallocated", message="deallocated after its task")
    task = batch.get_task(job_id, "work")
    assert task.state == "completed" and task.execution_info.exit_code == 0


def test_a_node_has_no_vm_extensions(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    assert list(batch.list_node_extensions(pool_id, node_id)) == []
    with pytest.raises(HttpResponseError) as missing:
        batch.get_node_extension(pool_id, node_id, "KeyVaultForLinux")
    assert missing.value.status_code == 404 and missing.value.response.json()["code"] == "ResourceNotFound"
    with pytest.raises(HttpResponseError) as no_node:
        list(batch.list_node_extensions(pool_id, "tvmps_none_d"))
    assert no_node.value.response.json()["code"] == "NodeNotFound"


def test_remote_login_is_the_ssh_server_of_the_nodes_host(batch: BatchClient, live_nodes: LiveServer) -> None:
    import socket

    import httpx

    from openbatch.auth.client import SharedKeyAuth

    from openbatch.agent.usage import ssh_port

    if ssh_port() is None:   # no SSH server here: the node says it cannot be reached
        pool_id, [node_id] = _pool(batch)
        with pytest.raises(HttpResponseError) as none:
            batch.get_node_remote_login_settings(pool_id, node_id)
        assert none.value.status_code == 409 and none.value.response.json()["code"] == "OperationNotValidOnNode"
        listener = socket.socket(socket.AF_INET6)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("::", 22))   # stands for sshd while the next pool's node registers
        listener.listen()
    else:
        listener = None
    try:
        pool_id, [node_id] = _pool(batch)
        settings = batch.get_node_remote_login_settings(pool_id, node_id)
        assert (settings.remote_login_ip_address, settings.remote_login_port) == ("127.0.0.1", 22)
        node = batch.get_node(pool_id, node_id)
        assert node.endpoint_configuration.inbound_endpoints[0].frontend_port == 22
        rdp = httpx.get(f"{live_nodes.url}/pools/{pool_id}/nodes/{node_id}/rdp",   # Windows only (2023-11-01 API)
                        params={"api-version": "2023-11-01.18.0"}, auth=SharedKeyAuth(live_nodes.account, live_nodes.key))
        assert rdp.status_code == 409 and rdp.json()["code"] == "OperationNotValidOnNode"
    finally:
        if listener is not None:
            listener.close()
