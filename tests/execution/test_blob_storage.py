"""Output files and resource files in Azure Blob storage, for real: Azurite, local nodes, azure-batch 15.1.

Every test makes its own containers; the pool (1 node x 4 slots per store) is shared.
"""

from __future__ import annotations

import shlex
import uuid
from typing import Iterator

import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import drop_pool, make_pool
from tests.sdk.conftest import expect_failure, uid
from tests.support.azurite import Azurite
from tests.support.live import LiveServer


@pytest.fixture
def batch(live_storage: LiveServer) -> BatchClient:
    return BatchClient(endpoint=live_storage.url,
                       credential=AzureNamedKeyCredential(live_storage.account, live_storage.key))


@pytest.fixture(scope="module")
def pool(live_storage: LiveServer) -> Iterator[str]:
    client = BatchClient(endpoint=live_storage.url,
                         credential=AzureNamedKeyCredential(live_storage.account, live_storage.key))
    pool_id = make_pool(client, nodes=1, slots=4)
    yield pool_id
    drop_pool(client, pool_id)


def container(azurite: Azurite) -> str:
    name = f"c{uuid.uuid4().hex[:20]}"
    azurite.container(name)
    return name


def sh(script: str) -> str:
    return f"/bin/sh -c {shlex.quote(script)}"


def output(pattern: str, url: str, path: str | None = None, condition: str = "taskcompletion",
           headers: list[m.OutputFileUploadHeader] | None = None) -> m.OutputFile:
    return m.OutputFile(
        file_pattern=pattern,
        destination=m.OutputFileDestination(container=m.OutputFileBlobContainerDestination(
            container_url=url, path=path, upload_headers=headers)),
        upload_options=m.OutputFileUploadConfiguration(upload_condition=condition))


def run_task(batch: BatchClient, pool: str, task: m.BatchTaskCreateOptions, job: m.BatchJobCreateOptions | None = None
             ) -> m.BatchTask:
    """Add ``task`` to a new job on ``pool`` and wait for it to complete."""
    job_id = uid("job")
    batch.create_job(job or m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool)))
    job_id = job.id if job else job_id
    batch.create_task(job_id, task)
    return wait_for(lambda: (t := batch.get_task(job_id, task.id)).state == "completed" and t,
                    timeout=60, message=f"task {task.id} to complete")


# -- output files --------------------------------------------------------------------------------


def test_outputs_are_uploaded_with_names_as_documented(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    name = container(azurite)
    url = azurite.sas_url(name, "cw")
    script = ("mkdir -p out/a/b && echo one > out/x.txt && echo two > out/a/y.txt && echo three > out/a/b/z.txt"
              " && echo hidden > out/.secret.txt && echo log > run.log && echo hi")
    task = m.BatchTaskCreateOptions(id="t", command_line=sh(script), output_files=[
        output("out/**/*.txt", url, path="results"),       # wildcards: a virtual directory, structure kept
        output("run.log", url, path="logs/the-run.log"),   # one file: path is the blob name
        output("../stdout.txt", url),                      # the task directory's stdout, named as the file
        output("nothing-*.bin", url),                      # matches nothing: nothing uploaded, no error
    ])
    done = run_task(batch, pool, task)
    assert done.execution_info.result == "success", done.execution_info.failure_info
    blobs = azurite.blobs(name)
    assert blobs == {
        "results/x.txt": b"one\n", "results/a/y.txt": b"two\n", "results/a/b/z.txt": b"three\n",
        "logs/the-run.log": b"log\n", "stdout.txt": b"hi\n",
    }
    files = {f.name for f in batch.list_task_files(done.url.split("/jobs/")[1].split("/")[0], "t")}
    assert {"fileuploadout.txt", "fileuploaderr.txt"} <= files


def test_upload_conditions_follow_the_exit_code(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    name = container(azurite)
    url = azurite.sas_url(name, "cw")

    def outputs(tag: str) -> list[m.OutputFile]:
        return [output("f.txt", url, f"{tag}/success", "tasksuccess"),
                output("f.txt", url, f"{tag}/failure", "taskfailure"),
                output("f.txt", url, f"{tag}/completion", "taskcompletion")]

    ok = run_task(batch, pool, m.BatchTaskCreateOptions(id="ok", command_line=sh("echo x > f.txt"),
                                                        output_files=outputs("ok")))
    bad = run_task(batch, pool, m.BatchTaskCreateOptions(id="bad", command_line=sh("echo x > f.txt; exit 3"),
                                                         output_files=outputs("bad")))
    assert ok.execution_info.result == "success"
    assert bad.execution_info.exit_code == 3 and bad.execution_info.failure_info.code == "FailureExitCode"
    assert sorted(azurite.blobs(name)) == ["bad/completion", "bad/failure", "ok/completion", "ok/success"]


def test_upload_headers_become_blob_properties(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    name = container(azurite)
    headers = [m.OutputFileUploadHeader(name="Content-Type", value="application/json"),
               m.OutputFileUploadHeader(name="x-ms-meta-origin", value="openbatch")]
    task = m.BatchTaskCreateOptions(id="t", command_line=sh("echo '{}' > r.json"),
                                    output_files=[output("r.json", azurite.sas_url(name, "cw"), headers=headers)])
    assert run_task(batch, pool, task).execution_info.result == "success"
    properties = azurite.service().get_blob_client(name, "r.json").get_blob_properties()
    assert properties.content_settings.content_type == "application/json"
    assert properties.metadata == {"origin": "openbatch"}


def test_a_large_file_goes_up_in_blocks(batch: BatchClient, live_storage: LiveServer, azurite: Azurite,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5 GB-style upload, scaled down: 1 MiB with a 64 KiB block size (the agent's setting) is 16 blocks."""
    monkeypatch.setenv("OPENBATCH_BLOB_BLOCK_SIZE", str(64 * 1024))
    pool_id = make_pool(batch, nodes=1, slots=1)   # its agent starts with the small block size
    try:
        name = container(azurite)
        task = m.BatchTaskCreateOptions(
            id="big", command_line=sh("head -c 1048576 /dev/urandom > big.bin && sha256sum big.bin > sum"),
            output_files=[output("big.bin", azurite.sas_url(name, "cw")), output("sum", azurite.sas_url(name, "cw"))])
        assert run_task(batch, pool_id, task).execution_info.result == "success"
    finally:
        drop_pool(batch, pool_id)
    blob = azurite.service().get_blob_client(name, "big.bin")
    committed, _ = blob.get_block_list()
    assert len(committed) == 16
    import hashlib

    blobs = azurite.blobs(name)
    assert hashlib.sha256(blobs["big.bin"]).hexdigest() == blobs["sum"].split()[0].decode()


@pytest.mark.parametrize("case", ["missing-container", "read-only-sas"])
def test_a_failed_upload_fails_the_task_as_documented(batch: BatchClient, pool: str, azurite: Azurite,
                                                      case: str) -> None:
    name = container(azurite)
    if case == "missing-container":
        url, code = azurite.sas_url(name, "cw").replace(f"/{name}?", f"/{name}x?"), "FileUploadAccessDenied"
        # a SAS signed for another container is refused; a container URL with an account SAS that is
        # missing gives ContainerNotFound (below)
        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
        from datetime import datetime, timedelta, timezone
        from tests.support.azurite import ACCOUNT, KEY

        sas = generate_account_sas(ACCOUNT, KEY, ResourceTypes(container=True, object=True),
                                   AccountSasPermissions(write=True, create=True),
                                   datetime.now(timezone.utc) + timedelta(hours=1))
        url, code = f"{azurite.endpoint}/{name}-gone?{sas}", "FileUploadContainerNotFound"
    else:
        url, code = azurite.sas_url(name, "rl"), "FileUploadAccessDenied"
    task = m.BatchTaskCreateOptions(id="t", command_line=sh("echo data > f.txt"),
                                    output_files=[output("f.txt", url)],
                                    constraints=m.BatchTaskConstraints(max_task_retry_count=2))
    done = run_task(batch, pool, task)
    info = done.execution_info
    assert info.result == "failure" and info.exit_code == 0
    assert info.failure_info.category == "usererror" and info.failure_info.code == code
    assert info.retry_count == 0   # upload errors are not retried
    details = {d.name: d.value for d in info.failure_info.details or ()}
    assert details["FilePattern"] == "f.txt" and "sig=" not in str(details)
    assert azurite.blobs(name) == {}


def test_file_upload_error_exit_condition(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    """exitConditions.fileUploadError decides what a failed upload does to the job."""
    name = container(azurite)
    job_id = uid("job")
    job = m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool),
                                  task_failure_mode="performexitoptionsjobaction")
    task = m.BatchTaskCreateOptions(
        id="t", command_line="/bin/true", output_files=[output("../stdout.txt", azurite.sas_url(name, "rl"))],
        exit_conditions=m.ExitConditions(file_upload_error=m.ExitOptions(job_action="disable")))
    done = run_task(batch, pool, task, job)
    assert done.execution_info.failure_info.code == "FileUploadAccessDenied"
    wait_for(lambda: batch.get_job(job_id).state == "disabled", message="the job disabled by fileUploadError")


def test_output_specs_that_cannot_work_are_refused(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool)))
    url = azurite.sas_url(container(azurite), "cw")
    for bad, where in [
        (output("../../escape.txt", url), "outputFiles/0/filePattern"),
        (output("f.txt", "ftp://example/c"), "outputFiles/0/destination/container/containerUrl"),
        (output("f.txt", url, headers=[m.OutputFileUploadHeader(name="x-ms-lease-id", value="1")]),
         "outputFiles/0/destination/container/uploadHeaders/0/name"),
    ]:
        error = expect_failure(lambda: batch.create_task(job_id, m.BatchTaskCreateOptions(
            id="t", command_line="/bin/true", output_files=[bad])), 400, None)
        assert {v["key"]: v["value"] for v in error["values"]}["PropertyName"] == where
    assert list(batch.list_tasks(job_id)) == []


# -- resource files from containers ----------------------------------------------------------------


def test_resource_files_from_a_container(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    name = container(azurite)
    client = azurite.service().get_container_client(name)
    for blob, data in {"in/a.txt": b"A", "in/sub/b.txt": b"B", "other/c.txt": b"C"}.items():
        client.upload_blob(blob, data)
    files = [m.ResourceFile(storage_container_url=azurite.sas_url(name, "rl"), blob_prefix="in/", file_path="data",
                            file_mode="0640"),
             m.ResourceFile(storage_container_url=azurite.sas_url(name, "rl"), blob_prefix="other/")]
    script = "cat data/in/a.txt data/in/sub/b.txt other/c.txt; stat -c %a data/in/a.txt"
    done = run_task(batch, pool, m.BatchTaskCreateOptions(id="t", command_line=sh(script), resource_files=files))
    assert done.execution_info.result == "success", done.execution_info.failure_info
    job_id = done.url.split("/jobs/")[1].split("/")[0]
    assert b"".join(batch.download_task_file(job_id, "t", "stdout.txt")) == b"ABC640\n"


def test_resource_files_from_the_auto_storage_account(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    name = container(azurite)
    azurite.service().get_container_client(name).upload_blob("input.csv", b"1,2,3\n")
    files = [m.ResourceFile(auto_storage_container_name=name)]
    done = run_task(batch, pool, m.BatchTaskCreateOptions(id="t", command_line=sh("cat input.csv"),
                                                          resource_files=files))
    assert done.execution_info.result == "success", done.execution_info.failure_info
    job_id = done.url.split("/jobs/")[1].split("/")[0]
    assert b"".join(batch.download_task_file(job_id, "t", "stdout.txt")) == b"1,2,3\n"
    task = batch.get_task(job_id, "t")
    assert task.resource_files[0].auto_storage_container_name == name and not task.resource_files[0].storage_container_url


@pytest.mark.parametrize("case", ["missing-container", "no-list-permission"])
def test_a_failed_container_download_fails_the_task(batch: BatchClient, pool: str, azurite: Azurite,
                                                    case: str) -> None:
    name = container(azurite)
    azurite.service().get_container_client(name).upload_blob("x", b"x")
    if case == "missing-container":
        files, code = [m.ResourceFile(auto_storage_container_name=f"{name}-gone")], "BlobNotFound"
    else:
        files, code = [m.ResourceFile(storage_container_url=azurite.sas_url(name, "r"))], "BlobAccessDenied"
    done = run_task(batch, pool, m.BatchTaskCreateOptions(id="t", command_line="/bin/true", resource_files=files))
    info = done.execution_info
    assert info.result == "failure" and info.exit_code is None
    assert info.failure_info.code == code and info.failure_info.category == "usererror"
    assert "sig=" not in str(info.failure_info.details)


# -- the node's own logs -----------------------------------------------------------------------------


def test_upload_batch_service_logs(batch: BatchClient, pool: str, azurite: Azurite) -> None:
    from datetime import datetime, timedelta, timezone

    name = container(azurite)
    node = next(iter(batch.list_nodes(pool)))
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    result = batch.upload_node_logs(pool, node.id, m.UploadBatchServiceLogsOptions(
        container_url=azurite.sas_url(name, "cw"), start_time=since))
    assert result.virtual_directory_name.startswith(f"{pool}/{node.id}/")
    blobs = azurite.blobs(name)
    assert result.number_of_files_uploaded == len(blobs) >= 1   # the count is what is there
    assert all(blob.startswith(result.virtual_directory_name + "/agent-") for blob in blobs)
    assert any(b"registered" in data or b"INFO" in data for data in blobs.values())
    # nothing of a range before the agent started
    empty = batch.upload_node_logs(pool, node.id, m.UploadBatchServiceLogsOptions(
        container_url=azurite.sas_url(name, "cw"), start_time=since - timedelta(days=2),
        end_time=since - timedelta(days=1)))
    assert empty.number_of_files_uploaded == 0
    # a SAS that cannot write is the caller's error
    error = expect_failure(lambda: batch.upload_node_logs(pool, node.id, m.UploadBatchServiceLogsOptions(
        container_url=azurite.sas_url(name, "rl"), start_time=since)), 400, "InvalidPropertyValue")
    assert "containerUrl" in str(error)
