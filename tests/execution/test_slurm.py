"""Slurm-backed pools on a real Slurm (scripts/slurm.sh starts a single-host cluster): each compute node is
one Slurm allocation running ``openbatch agent``, driven through azure-batch 15.1 on both stores.

Skipped, saying why, where Slurm does not answer.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator
import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import _image
from tests.sdk.conftest import uid
from tests.support.live import LiveServer


#: The provider's squeue period and a margin.
POLL = 2.5


@pytest.fixture
def slurm(live_slurm: LiveServer) -> LiveServer:
    return live_slurm


def _jobs(name_prefix: str = "openbatch-") -> dict[str, tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True, timeout=10).stdout
    jobs = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        job_id, name, state = parts
        if name.startswith(name_prefix):
            jobs[name[len(name_prefix):]] = (job_id, state)
    return jobs


def client(server: LiveServer) -> BatchClient:
    return BatchClient(endpoint=server.url, credential=AzureNamedKeyCredential(server.account, server.key))


def slurm_pool(batch: BatchClient, nodes: int, **extra: object) -> str:
    pool_id = uid("slurm")
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                               virtual_machine_configuration=_image(),
                                               target_dedicated_nodes=nodes, task_slots_per_node=2, **extra))
    return pool_id


def idle_nodes(batch: BatchClient, pool_id: str, count: int) -> list[m.BatchNode]:
    def ready() -> list[m.BatchNode] | None:
        found = list(batch.list_nodes(pool_id))
        return found if len(found) == count and all(n.state == "idle" for n in found) else None

    return wait_for(ready, timeout=60, message=f"{count} idle Slurm node(s) in {pool_id}")


def test_a_pool_on_slurm_runs_tasks_and_gives_its_allocations_back(slurm: LiveServer) -> None:
    batch = client(slurm)
    pool_id = slurm_pool(batch, 2)
    nodes = idle_nodes(batch, pool_id, 2)
    jobs = _jobs()
    assert all(jobs[n.id][1] == "RUNNING" for n in nodes)   # one running allocation per node
    job_id = uid("sj")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true") for i in range(8)]))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="where", command_line="/bin/sh -c 'echo $$; sleep 30'"))
    task = wait_for(lambda: (t := batch.get_task(job_id, "where")).state == "running" and t, message="a task running")
    pid = wait_for(lambda: b"".join(batch.download_task_file(job_id, "where", "stdout.txt")).decode().strip(),
                   message="the task's pid")
    listed = subprocess.run(["scontrol", "listpids", jobs[task.node_info.node_id][0]], capture_output=True,
                            text=True, timeout=10).stdout
    assert pid in listed.split()   # the task runs inside its node's allocation
    wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.succeeded == 8, timeout=60,
             message="8 tasks to succeed on Slurm nodes")
    batch.begin_delete_pool(pool_id, polling_interval=0)
    wait_for(lambda: not any(n.id in _jobs() for n in nodes), timeout=30, message="the allocations to end")


def test_a_lost_allocation_requeues_its_task_and_a_new_one_brings_the_node_back(slurm: LiveServer,
                                                                              tmp_path: Path) -> None:
    batch = client(slurm)
    pool_id = slurm_pool(batch, 1)
    [node] = idle_nodes(batch, pool_id, 1)
    job_id = uid("lost")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    # the first run sleeps until its allocation is taken away (nothing after the sleep could exit 0 in
    # the meantime); the next one ends at once
    marker = tmp_path / "ran"
    script = f"if [ -e {marker} ]; then echo done; exit 0; fi; touch {marker}; exec sleep 60"
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line=f"/bin/sh -c '{script}'"))
    wait_for(lambda: marker.exists(), message="the first run to start")
    first = _jobs()[node.id][0]
    subprocess.run(["scancel", first], check=True, timeout=10)   # the allocation is taken away
    wait_for(lambda: batch.get_node(pool_id, node.id).state in ("unusable", "starting", "idle", "running")
             and _jobs().get(node.id, ("", ""))[0] != first, timeout=30, message="a new allocation")
    task = wait_for(lambda: (t := batch.get_task(job_id, "long")).state == "completed" and t, timeout=60,
                    message="the task to run again and complete")
    assert task.execution_info.result == "success" and task.execution_info.requeue_count >= 1
    assert batch.get_node(pool_id, node.id).state in ("idle", "running")
    batch.begin_delete_pool(pool_id, polling_interval=0)


def test_sbatch_failures_are_resize_errors(slurm: LiveServer) -> None:
    batch = client(slurm)
    pool_id = slurm_pool(batch, 1, metadata=[m.BatchMetadataItem(name="openbatch.slurm.partition",
                                                                 value="no-such-partition")])
    pool = wait_for(lambda: (p := batch.get_pool(pool_id)).resize_errors and p, timeout=30,
                    message="the sbatch failure in resizeErrors")
    error = pool.resize_errors[0]
    assert error.code == "AllocationFailed" and "sbatch failed" in error.message
    assert "partition" in error.message.lower()
    assert [n.state for n in batch.list_nodes(pool_id)] == ["creating"]
    batch.begin_delete_pool(pool_id, polling_interval=0)
    time.sleep(0.5)
    assert pool_id not in {p.id for p in batch.list_pools()} or batch.get_pool(pool_id).state == "deleting"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def slurm_one_minute(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec  # type: ignore[no-untyped-def]
                     ) -> Iterator[LiveServer]:
    """A Slurm-backed server whose allocations last one minute (sbatch --time=1)."""
    from tests.conftest import _serve
    from tests.support.slurm import slurm_unavailable

    why = slurm_unavailable()
    if why:
        pytest.skip(why)
    yield from _serve(request, tmp_path_factory, spec, "slurm-1min", node_provider="slurm", node_lost_after=5.0,
                      slurm_sbatch_options="--time=1")


def test_only_tasks_that_can_finish_start_before_the_allocation_ends(slurm_one_minute: LiveServer) -> None:
    batch = client(slurm_one_minute)
    pool_id = slurm_pool(batch, 1)
    idle_nodes(batch, pool_id, 1)
    wait_for(lambda: _jobs().get(next(iter(batch.list_nodes(pool_id))).id, ("", "", ""))[1] == "RUNNING",
             message="the allocation running")
    time.sleep(POLL)   # the provider has read the allocation's end time
    from openbatch.store import schema

    with slurm_one_minute.app.services.ctx.store.read() as conn:
        until = conn.execute(schema.nodes.select()).fetchall()
    assert [row.available_until is not None for row in until if row.pool_id_key == pool_id.lower()] == [True]
    job_id = uid("time")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))

    def task(task_id: str, limit: str | None) -> m.BatchTaskCreateOptions:
        constraints = m.BatchTaskConstraints(max_wall_clock_time=limit) if limit else None
        return m.BatchTaskCreateOptions(id=task_id, command_line="/bin/true", constraints=constraints)

    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        task("too-long", "PT5M"), task("unlimited", None), task("short", "PT10S")]))
    wait_for(lambda: batch.get_task(job_id, "short").state == "completed", message="the short task to run")
    time.sleep(1.0)
    # under a minute left: a task that needs 5 minutes, or says nothing, does not start there
    assert batch.get_task(job_id, "too-long").state == "active"
    assert batch.get_task(job_id, "unlimited").state == "active"
    batch.begin_delete_pool(pool_id, polling_interval=0)


def test_reboot_and_reimage_are_a_fresh_allocation(slurm: LiveServer) -> None:
    from azure.batch.models._models import BatchNodeRebootOptions, BatchNodeReimageOptions

    batch = client(slurm)
    pool_id = slurm_pool(batch, 1)
    [node] = idle_nodes(batch, pool_id, 1)
    job_id = uid("mark")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="mark", command_line="/bin/sh -c 'touch $AZ_BATCH_NODE_SHARED_DIR/mark'"))
    wait_for(lambda: batch.get_task(job_id, "mark").state == "completed", message="the marker written")
    first = _jobs()[node.id][0]
    batch.begin_reboot_node(pool_id, node.id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=0)
    wait_for(lambda: _jobs().get(node.id, ("", ""))[0] not in ("", first), timeout=30,
             message="a new allocation for the rebooted node")
    idle_nodes(batch, pool_id, 1)
    shared = {f.name for f in batch.list_node_files(pool_id, node.id, recursive=True) if f.name.startswith("shared/")}
    assert "shared/mark" in shared   # a reboot keeps the node's disk
    second = _jobs()[node.id][0]
    batch.begin_reimage_node(pool_id, node.id, BatchNodeReimageOptions(node_reimage_option="requeue"),
                             polling_interval=0)
    wait_for(lambda: _jobs().get(node.id, ("", ""))[0] not in ("", first, second), timeout=30,
             message="a new allocation for the reimaged node")
    idle_nodes(batch, pool_id, 1)
    shared = {f.name for f in batch.list_node_files(pool_id, node.id, recursive=True) if f.name.startswith("shared/")}
    assert "shared/mark" not in shared   # a reimage starts from an empty disk
    assert batch.get_node(pool_id, node.id).state == "idle"
    batch.begin_delete_pool(pool_id, polling_interval=0)
