"""Multi-instance (MPI) tasks on real local nodes, through azure-batch 15.1: all its nodes or none, the
coordination command on each, the application on the primary, subtasks, failures, and a real mpirun."""

from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.core.exceptions import HttpResponseError

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import (_image, add_tasks, drop_pool, file_server, make_job, read_file,  # noqa: F401,E501
                                                 sh, wait_completed)
from tests.sdk.conftest import uid
from tests.sdk.test_jobs import error_values

#: Kept running by every coordination command of these tests: gone once their task ends.
DAEMON = "sleep 3011"


def _mpi_pool(batch: BatchClient, nodes: int, *, inter_node: bool = True, slots: int = 1) -> str:
    pool_id = uid("mpi")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=_image(), target_dedicated_nodes=nodes,
        task_slots_per_node=slots, enable_inter_node_communication=inter_node))
    wait_for(lambda: len([n for n in batch.list_nodes(pool_id) if n.state == "idle"]) == nodes, timeout=30,
             message=f"{nodes} idle nodes")
    return pool_id


@pytest.fixture
def mpi_pool(batch: BatchClient) -> Iterator[str]:
    pool_id = _mpi_pool(batch, 3)
    yield pool_id
    drop_pool(batch, pool_id)


def _daemons() -> int:
    """Processes of the coordination commands' daemon still running."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().replace(b"\0", b" ").strip() == DAEMON.encode():
                    count += 1
        except OSError:
            pass
    return count


def _mi_task(task_id: str, script: str, instances: int, coordination: str = "true",
             **options: object) -> m.BatchTaskCreateOptions:
    settings = m.MultiInstanceSettings(number_of_instances=instances, coordination_command_line=coordination,
                                       common_resource_files=options.pop("common", None))
    return m.BatchTaskCreateOptions(id=task_id, command_line=sh(script), multi_instance_settings=settings, **options)


def test_the_application_runs_on_the_primary_after_every_coordination(batch: BatchClient, mpi_pool: str,
                                                                       file_server: str) -> None:  # noqa: F811
    job_id = make_job(batch, mpi_pool)
    coordination = sh(f"echo coordinated $AZ_BATCH_NODE_ID $AZ_BATCH_IS_CURRENT_NODE_MASTER; "
                      f"cat $AZ_BATCH_TASK_SHARED_DIR/common.txt; {DAEMON} >/dev/null 2>&1 &")
    add_tasks(batch, job_id, _mi_task(
        "mpi", 'echo "$AZ_BATCH_HOST_LIST|$AZ_BATCH_MASTER_NODE|$AZ_BATCH_IS_CURRENT_NODE_MASTER"; '
               'test "$AZ_BATCH_TASK_SHARED_DIR" = "$AZ_BATCH_TASK_DIR" && cat ../common.txt && cat in.txt',
        3, coordination, common=[m.ResourceFile(http_url=f"{file_server}/data.txt", file_path="common.txt")],
        resource_files=[m.ResourceFile(http_url=f"{file_server}/data.txt", file_path="in.txt")]))
    done = wait_completed(batch, job_id, "mpi")
    assert done.execution_info.result == "success", done.execution_info.as_dict()
    out = read_file(batch, job_id, "mpi")
    primary = done.node_info.node_id
    # the primary's own coordination first, then the application (host list: the three nodes, primary first)
    assert out.startswith(f"coordinated {primary} true\npayload\n"), out
    assert out.endswith("127.0.0.1,127.0.0.1,127.0.0.1|127.0.0.1:6000|true\npayload\npayload\n"), out

    subtasks = list(batch.list_subtasks(job_id, "mpi"))
    assert [s.id for s in subtasks] == [1, 2]
    nodes = {s.node_info.node_id for s in subtasks}
    assert len(nodes) == 2 and primary not in nodes
    for subtask in subtasks:
        assert (subtask.state, subtask.result, subtask.exit_code) == ("completed", "success", 0), subtask.as_dict()
        assert subtask.node_info.task_root_directory == f"workitems/{job_id}/job-1/mpi/{subtask.id}"
        assert subtask.start_time <= subtask.end_time
        path = f"{subtask.node_info.task_root_directory}/stdout.txt"
        text = b"".join(batch.download_node_file(mpi_pool, subtask.node_info.node_id, path)).decode()
        assert text == f"coordinated {subtask.node_info.node_id} false\npayload\n"
    # what the coordination commands left running went with the task; the nodes are free again
    wait_for(lambda: _daemons() == 0, timeout=15, message=f"the coordination daemons killed: {_leftovers()}")
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(mpi_pool)), message="idle nodes")
    assert sum(n.total_tasks_run for n in batch.list_nodes(mpi_pool)) == 3


def test_it_waits_for_enough_nodes_and_other_tasks_go_by(batch: BatchClient, mpi_pool: str) -> None:
    job_id = make_job(batch, mpi_pool)
    add_tasks(batch, job_id, m.BatchTaskCreateOptions(id="busy", command_line=sh("sleep 2")))
    wait_for(lambda: batch.get_task(job_id, "busy").state == "running", message="busy running")
    add_tasks(batch, job_id, _mi_task("mpi", "true", 3), m.BatchTaskCreateOptions(id="small", command_line="true"))
    wait_completed(batch, job_id, "small")
    assert batch.get_task(job_id, "mpi").state == "active"   # two nodes free: not three
    done = wait_completed(batch, job_id, "mpi")
    assert done.execution_info.result == "success"
    assert done.execution_info.start_time >= batch.get_task(job_id, "busy").execution_info.end_time


def test_a_failed_coordination_fails_the_task_and_it_is_retried(batch: BatchClient, mpi_pool: str,
                                                                tmp_path) -> None:  # type: ignore[no-untyped-def]
    job_id = make_job(batch, mpi_pool)
    marks = tmp_path / "marks"
    marks.mkdir(mode=0o777)
    marks.chmod(0o777)
    # the first subtask to coordinate on the first attempt fails (exit 3); the primary never starts its command
    coordination = sh(f"{DAEMON} >/dev/null 2>&1 & "
                      f"if [ $AZ_BATCH_IS_CURRENT_NODE_MASTER = false ] && [ $AZ_BATCH_TASK_RETRY_COUNT = 0 ] && "
                      f"mkdir {marks}/failed 2>/dev/null; then exit 3; fi")
    add_tasks(batch, job_id, _mi_task("mpi", f"touch {marks}/ran", 3, coordination,
                                      constraints=m.BatchTaskConstraints(max_task_retry_count=1)))
    done = wait_completed(batch, job_id, "mpi")
    info = done.execution_info
    assert (info.result, info.retry_count, info.exit_code) == ("success", 1, 0), info.as_dict()
    assert (marks / "ran").exists()

    job_id = make_job(batch, mpi_pool)
    add_tasks(batch, job_id, _mi_task("mpi", f"touch {marks}/never", 3, sh(
        f"{DAEMON} >/dev/null 2>&1 & [ $AZ_BATCH_IS_CURRENT_NODE_MASTER = true ] || exit 7")))
    done = wait_completed(batch, job_id, "mpi")
    info = done.execution_info
    assert (info.result, info.exit_code, info.failure_info.code) == ("failure", 7, "FailureExitCode")
    assert {"name": "SubtaskId", "value": "1"} in [d.as_dict() for d in info.failure_info.details] or \
        {"name": "SubtaskId", "value": "2"} in [d.as_dict() for d in info.failure_info.details]
    assert not (marks / "never").exists()
    assert 7 in [s.exit_code for s in batch.list_subtasks(job_id, "mpi") if s.result == "failure"]
    wait_for(lambda: _daemons() == 0, timeout=15, message=f"the coordination daemons killed: {_leftovers()}")
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(mpi_pool)), message="idle nodes")


def test_terminating_it_ends_every_instance(batch: BatchClient, mpi_pool: str) -> None:
    job_id = make_job(batch, mpi_pool)
    add_tasks(batch, job_id, _mi_task("mpi", "sleep 300", 3, sh(f"{DAEMON} >/dev/null 2>&1 &")))
    wait_for(lambda: _daemons() == 3, timeout=15, message="three coordinations")
    wait_for(lambda: all(n.state == "running" for n in batch.list_nodes(mpi_pool)), message="three running nodes")
    batch.terminate_task(job_id, "mpi")
    done = batch.get_task(job_id, "mpi")
    assert done.state == "completed" and done.execution_info.failure_info.code == "TaskEnded"
    assert {s.state for s in batch.list_subtasks(job_id, "mpi")} == {"completed"}
    wait_for(lambda: _daemons() == 0, timeout=15, message=f"the coordination daemons killed: {_leftovers()}")
    wait_for(lambda: all(n.state == "idle" for n in batch.list_nodes(mpi_pool)), message="idle nodes")


def test_a_pool_that_cannot_run_it_is_refused(batch: BatchClient) -> None:
    pool_id = uid("nompi")
    batch.create_pool(m.BatchPoolCreateOptions(id=pool_id, vm_size="standard_d2s_v3",
                                               virtual_machine_configuration=_image(), target_dedicated_nodes=0))
    try:
        job_id = make_job(batch, pool_id)
        with pytest.raises(HttpResponseError) as refused:
            batch.create_task(job_id, _mi_task("mpi", "true", 2))
        assert refused.value.status_code == 400 and refused.value.error.code == "InvalidPropertyValue"
        assert "enableInterNodeCommunication" in error_values(refused.value)["Reason"]
        assert list(batch.list_tasks(job_id)) == []
    finally:
        drop_pool(batch, pool_id)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI is not installed (apt openmpi-bin)")
def test_mpirun_runs_across_the_instances(batch: BatchClient, mpi_pool: str) -> None:
    job_id = make_job(batch, mpi_pool)
    hosts = "$(echo $AZ_BATCH_HOST_LIST | sed 's/[^,]*/&:1/g')"   # one slot on each instance's host
    add_tasks(batch, job_id, _mi_task(
        "mpi", f"mpirun --oversubscribe -host {hosts} -np 3 /bin/sh -c 'echo rank $OMPI_COMM_WORLD_RANK of "
               f"$OMPI_COMM_WORLD_SIZE'", 3))
    done = wait_completed(batch, job_id, "mpi", timeout=60)
    out = read_file(batch, job_id, "mpi")
    assert done.execution_info.result == "success", (done.execution_info.as_dict(), out,
                                                     read_file(batch, job_id, "mpi", "stderr.txt"))
    assert sorted(out.split("\n")[:3]) == ["rank 0 of 3", "rank 1 of 3", "rank 2 of 3"], out


def test_losing_a_subtask_node_requeues_the_whole_task(batch: BatchClient, mpi_pool: str) -> None:
    job_id = make_job(batch, mpi_pool)
    add_tasks(batch, job_id, _mi_task("mpi", "sleep 300", 3, sh(f"{DAEMON} >/dev/null 2>&1 &")))
    wait_for(lambda: _daemons() == 3, timeout=15, message="three coordinations")
    subtask_node = list(batch.list_subtasks(job_id, "mpi"))[0].node_info.node_id
    batch.begin_remove_nodes(mpi_pool, m.BatchNodeRemoveOptions(node_ids=[subtask_node],
                                                                node_deallocation_option="requeue"),
                             polling_interval=1).result(timeout=30)
    task = batch.get_task(job_id, "mpi")
    assert task.state == "active" and task.execution_info.requeue_count == 1   # two nodes left: it waits
    wait_for(lambda: _daemons() == 0, timeout=15, message=f"the coordination daemons killed: {_leftovers()}")
    nodes = list(batch.list_nodes(mpi_pool))
    assert len(nodes) == 2 and all(n.state == "idle" and n.running_tasks_count == 0 for n in nodes)
    batch.begin_resize_pool(mpi_pool, m.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0)
    wait_for(lambda: batch.get_task(job_id, "mpi").state == "running", timeout=30, message="running again")
    wait_for(lambda: _daemons() == 3, timeout=15, message="three coordinations again")
    batch.terminate_task(job_id, "mpi")
    wait_for(lambda: _daemons() == 0, timeout=15, message=f"the coordination daemons killed: {_leftovers()}")


def test_one_instance_still_coordinates(batch: BatchClient, mpi_pool: str) -> None:
    job_id = make_job(batch, mpi_pool)
    add_tasks(batch, job_id, _mi_task("one", 'echo "app $AZ_BATCH_HOST_LIST $AZ_BATCH_IS_CURRENT_NODE_MASTER"', 1,
                                      sh("echo coordinated")))
    done = wait_completed(batch, job_id, "one")
    assert done.execution_info.result == "success"
    assert read_file(batch, job_id, "one") == "coordinated\napp 127.0.0.1 true\n"
    assert list(batch.list_subtasks(job_id, "one")) == []


def _leftovers() -> list[str]:
    """The coordination marks of the daemons still running (for a failure's message)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().replace(b"\0", b" ").strip() != DAEMON.encode():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as environ:
                found += [v.decode() for v in environ.read().split(b"\0") if v.startswith(b"OPENBATCH_COORDINATION")]
        except OSError:
            pass
    return found


def test_it_runs_where_its_jobs_preparation_ran(batch: BatchClient, mpi_pool: str) -> None:
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(
        id=job_id, pool_info=m.BatchPoolInfo(pool_id=mpi_pool),
        job_preparation_task=m.BatchJobPreparationTask(command_line=sh("echo prepared $AZ_BATCH_NODE_ID > prep.txt"),
                                                       wait_for_success=True)))
    check = "cat $AZ_BATCH_JOB_PREP_WORKING_DIR/prep.txt"
    add_tasks(batch, job_id, _mi_task("mpi", check, 3, sh(check)))
    done = wait_completed(batch, job_id, "mpi")
    assert done.execution_info.result == "success", done.execution_info.as_dict()
    primary = done.node_info.node_id
    assert read_file(batch, job_id, "mpi") == f"prepared {primary}\n" * 2   # its coordination, then the command
    for subtask in batch.list_subtasks(job_id, "mpi"):
        path = f"{subtask.node_info.task_root_directory}/stdout.txt"
        assert b"".join(batch.download_node_file(mpi_pool, subtask.node_info.node_id, path)).decode() == \
            f"prepared {subtask.node_info.node_id}\n"
    statuses = list(batch.list_job_preparation_and_release_task_status(job_id))
    assert len(statuses) == 3 and {s.job_preparation_task_execution_info.result for s in statuses} == {"success"}
