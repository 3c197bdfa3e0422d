"""Container tasks on a real Docker engine (scripts/docker.sh), through azure-batch 15.1.

The image is made here from this host's own tools (tests/support/docker.py): no registry is
reachable. It has no /etc/debian_version, which the host has, so a task can tell where it runs.
"""

from __future__ import annotations

import subprocess
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid
from tests.support.docker import Registry, build_test_image, docker_unavailable, registry_unavailable, start_registry

_WHY = docker_unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")

WHERE = "test -e /etc/debian_version && echo on-the-host || echo in-a-container"


@pytest.fixture(scope="module")
def image() -> str:
    return build_test_image()


def _vm(containers: m.BatchContainerConfiguration | None) -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(publisher="microsoft-azure-batch", offer="ubuntu-server-container",
                                                sku="20-04-lts"),
        node_agent_sku_id="batch.node.ubuntu 20.04", container_configuration=containers)


def _pool(batch: BatchClient, image: str | None, start_task: m.BatchStartTask | None = None) -> str:
    pool_id = uid("pool")
    containers = m.BatchContainerConfiguration(type="dockerCompatible", container_image_names=[image]) if image else None
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=1,
                                               task_slots_per_node=4, virtual_machine_configuration=_vm(containers),
                                               start_task=start_task))
    return pool_id


def _job(batch: BatchClient, pool_id: str) -> str:
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    return job_id


def _settings(image: str, **more: object) -> m.BatchTaskContainerSettings:
    return m.BatchTaskContainerSettings(image_name=image, **more)


def _done(batch: BatchClient, job_id: str, task_id: str, timeout: float = 60) -> m.BatchTask:
    return wait_for(lambda: (task := batch.get_task(job_id, task_id)).state == "completed" and task,
                    timeout=timeout, message=f"{task_id} completed")


def _stdout(batch: BatchClient, job_id: str, task_id: str) -> list[str]:
    return b"".join(batch.download_task_file(job_id, task_id, "stdout.txt")).decode().split("\n")


def _containers_left(task: m.BatchTask) -> str:
    return subprocess.run(["docker", "ps", "--all", "--quiet", "--filter",
                           f"id={task.execution_info.container_info.container_id}"],
                          capture_output=True, text=True).stdout.strip()


def test_a_task_runs_in_its_container_with_the_node_directories(batch: BatchClient, image: str) -> None:
    start = m.BatchStartTask(command_line=f"/bin/sh -c '{WHERE} > $AZ_BATCH_NODE_SHARED_DIR/start.txt'",
                             container_settings=_settings(image), wait_for_success=True)
    pool_id = _pool(batch, image, start)
    job_id = _job(batch, pool_id)
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="where", container_settings=_settings(image),
        command_line=f"/bin/sh -c '{WHERE}; pwd; echo $AZ_BATCH_TASK_ID $OWN; cat $AZ_BATCH_NODE_SHARED_DIR/start.txt; "
                     "echo made > made.txt; exit 3'",
        environment_settings=[m.EnvironmentSetting(name="OWN", value="mine")]))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="image-dir", command_line="/bin/pwd",
        container_settings=_settings(image, working_directory="containerImageDefault")))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="no-mounts", command_line="/bin/sh -c 'test -e $AZ_BATCH_NODE_SHARED_DIR/start.txt && echo mounted || echo none'",
        container_settings=_settings(image, container_host_batch_bind_mounts=[])))
    task = _done(batch, job_id, "where")
    out = _stdout(batch, job_id, "where")
    assert out[0] == "in-a-container" and out[1].endswith(f"/{job_id}/job-1/where/wd")
    assert out[2:4] == ["where mine", "in-a-container"]
    info = task.execution_info
    assert info.exit_code == 3 and info.result == "failure" and info.failure_info.code == "FailureExitCode"
    assert len(info.container_info.container_id) == 64 and info.container_info.state == "exited"
    assert b"".join(batch.download_task_file(job_id, "where", "wd/made.txt")) == b"made\n"
    assert not _containers_left(task)   # removed once its state was read
    assert _stdout(batch, job_id, "image-dir")[0] == "/root"
    assert _stdout(batch, job_id, "no-mounts")[0] == "none"


def test_terminate_and_wall_clock_reach_the_container(batch: BatchClient, image: str) -> None:
    job_id = _job(batch, _pool(batch, image))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="long", command_line="/bin/sleep 300", container_settings=_settings(image)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="timed", command_line="/bin/sleep 300", container_settings=_settings(image),
        constraints=m.BatchTaskConstraints(max_wall_clock_time="PT2S")))
    wait_for(lambda: batch.get_task(job_id, "long").state == "running", message="running")
    name = wait_for(lambda: subprocess.run(["docker", "ps", "--quiet", "--filter", "name=openbatch-t"],
                                           capture_output=True, text=True).stdout.split(), message="containers up")
    assert name
    batch.terminate_task(job_id, "long")
    timed = _done(batch, job_id, "timed", timeout=30)
    assert timed.execution_info.failure_info.code == "MaxWallClockTimeExpiry"
    long = _done(batch, job_id, "long", timeout=30)
    for task in (long, timed):
        wait_for(lambda task=task: not task.execution_info.container_info
                 or not _containers_left(task), message="its container gone")
    running = subprocess.run(["docker", "ps", "--quiet", "--filter", f"label=org.openbatch.node"],
                             capture_output=True, text=True).stdout.split()
    assert not set(running) & set(name)


def test_a_task_and_its_pool_must_agree_on_containers(batch: BatchClient, image: str) -> None:
    container_job = _job(batch, _pool(batch, image))
    host_job = _job(batch, _pool(batch, None))
    batch.create_task(container_job, m.BatchTaskCreateOptions(id="bare", command_line="/bin/true"))
    batch.create_task(host_job, m.BatchTaskCreateOptions(id="boxed", command_line="/bin/true",
                                                         container_settings=_settings(image)))
    batch.create_task(container_job, m.BatchTaskCreateOptions(
        id="missing", command_line="/bin/true", container_settings=_settings("127.0.0.1:1/none/such:1")))
    for job_id, task_id, code in ((container_job, "bare", "ContainerSettingsMismatch"),
                                  (host_job, "boxed", "ContainerSettingsMismatch"),
                                  (container_job, "missing", "ContainerImagePullFailed")):
        info = _done(batch, job_id, task_id).execution_info
        assert info.result == "failure" and info.exit_code is None, task_id
        assert info.failure_info.category == "usererror" and info.failure_info.code == code, task_id


def test_managed_identities_for_registries_are_refused(batch: BatchClient, image: str) -> None:
    from azure.core.exceptions import HttpResponseError

    job_id = _job(batch, _pool(batch, None))
    with pytest.raises(HttpResponseError) as refused:
        batch.create_task(job_id, m.BatchTaskCreateOptions(id="r", command_line="/bin/true", container_settings=_settings(
            image, registry=m.ContainerRegistryReference(registry_server="r.example", identity_reference=
                                                         m.BatchNodeIdentityReference(resource_id="/x")))))
    assert refused.value.status_code == 400 and refused.value.error.code == "UnsupportedProperty"


# -- private registries and the pool's images -----------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[Registry]:
    why = registry_unavailable()
    if why:
        pytest.skip(why)
    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


def _registry(registry: Registry, password: str | None = None) -> m.ContainerRegistryReference:
    return m.ContainerRegistryReference(registry_server=registry.server, username=registry.username,
                                        password=password or registry.password)


def _container_pool(batch: BatchClient, images: list[str], registries: list[m.ContainerRegistryReference]) -> str:
    pool_id = uid("pool")
    containers = m.BatchContainerConfiguration(type="dockerCompatible", container_image_names=images,
                                               container_registries=registries)
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=1,
                                               virtual_machine_configuration=_vm(containers)))
    return pool_id


def _node(batch: BatchClient, pool_id: str, state: str) -> m.BatchNode:
    return wait_for(lambda: (nodes := list(batch.list_nodes(pool_id))) and nodes[0].state == state and nodes[0],
                    timeout=60, message=f"the node {state}")


def test_the_pool_images_are_pulled_with_its_registry_before_its_node_is_ready(
        batch: BatchClient, image: str, registry: Registry) -> None:
    private = registry.push(image, f"{uid('tools')}:1")
    pool_id = _container_pool(batch, [private], [_registry(registry)])
    _node(batch, pool_id, "idle")
    assert subprocess.run(["docker", "image", "inspect", private], capture_output=True).returncode == 0
    job_id = _job(batch, pool_id)
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=f"/bin/sh -c '{WHERE}'",
                                                       container_settings=_settings(private)))
    assert _done(batch, job_id, "t").execution_info.exit_code == 0
    assert _stdout(batch, job_id, "t")[0] == "in-a-container"
    registry.forget(private)


def test_a_pool_image_that_cannot_be_pulled_makes_the_node_unusable(
        batch: BatchClient, image: str, registry: Registry) -> None:
    private = registry.push(image, f"{uid('tools')}:1")
    pool_id = _container_pool(batch, [private], [_registry(registry, password="wrong")])
    node = _node(batch, pool_id, "unusable")
    assert node.errors[0].code == "ContainerImagePullFailed" and private in node.errors[0].message


def test_a_task_pulls_its_image_with_its_own_registry(batch: BatchClient, image: str, registry: Registry) -> None:
    private = registry.push(image, f"{uid('tools')}:1")
    job_id = _job(batch, _pool(batch, image))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="anonymous", command_line="/bin/true",
                                                       container_settings=_settings(private)))
    info = _done(batch, job_id, "anonymous").execution_info
    assert info.failure_info.code == "ContainerImagePullFailed"   # the registry wants its password
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="signed-in", command_line="/bin/echo signed-in",
                                                       container_settings=_settings(private,
                                                                                    registry=_registry(registry))))
    assert _done(batch, job_id, "signed-in").execution_info.exit_code == 0
    registry.forget(private)
