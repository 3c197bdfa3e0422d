"""Files of a task that ran, through azure-batch 15.1, served from a local node's directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from openbatch.agent.files import NodeFiles
from tests.sdk.conftest import API_VERSION, uid
from tests.support.live import LiveServer


@pytest.fixture
def ran_task(batch: BatchClient, live: LiveServer, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A task that ran on node ``node-f`` of pool ``pool-f``: its directory holds stdout, stderr and wd/."""
    files = live.services.files
    previous = files.source_for
    source = NodeFiles(lambda pool, node: tmp_path / pool / node)
    files.source_for = lambda where: source
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="pool-f")))
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))
    task_dir = tmp_path / "pool-f" / "node-f" / "workitems" / job_id / "job-1" / "t1"
    (task_dir / "wd" / "sub").mkdir(parents=True)
    (task_dir / "stdout.txt").write_text("hello from the task\n")
    (task_dir / "stderr.txt").write_text("")
    (task_dir / "wd" / "out.txt").write_bytes(bytes(range(256)))
    (task_dir / "wd" / "sub" / "deep.txt").write_text("deep")
    os.chmod(task_dir / "wd" / "out.txt", 0o640)
    node_info = {"poolId": "pool-f", "nodeId": "node-f", "affinityId": "node-f",
                 "taskRootDirectory": f"workitems/{job_id}/job-1/t1"}
    live.services.execution.task_assigned(live.account, job_id, "t1", node_info, preparing=False)
    try:
        yield job_id, "t1", task_dir
    finally:
        files.source_for = previous


def test_task_node_info_points_at_the_files(batch: BatchClient, live: LiveServer, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    info = batch.get_task(job_id, task_id).node_info
    assert info.node_url == f"{live.url}/pools/pool-f/nodes/node-f"
    assert info.task_root_directory_url == f"{live.url}/pools/pool-f/nodes/node-f/files/workitems/{job_id}/job-1/t1"


def test_list_task_files(batch: BatchClient, live: LiveServer, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    top = {f.name: f for f in batch.list_task_files(job_id, task_id)}
    assert sorted(top) == ["stderr.txt", "stdout.txt", "wd"]
    assert top["wd"].is_directory and not top["stdout.txt"].is_directory
    assert top["stdout.txt"].properties.content_length == len("hello from the task\n")
    assert top["stdout.txt"].url == f"{live.url}/jobs/{job_id}/tasks/{task_id}/files/stdout.txt"
    everything = sorted(f.name for f in batch.list_task_files(job_id, task_id, recursive=True))
    assert everything == ["stderr.txt", "stdout.txt", "wd", "wd/out.txt", "wd/sub", "wd/sub/deep.txt"]
    only_wd = sorted(f.name for f in batch.list_task_files(job_id, task_id, recursive=True, filter="startswith(name,'wd/')"))
    assert only_wd == ["wd/out.txt", "wd/sub", "wd/sub/deep.txt"]
    pages = list(batch.list_task_files(job_id, task_id, recursive=True, max_results=4).by_page())
    assert [len(list(p)) for p in pages] == [4, 2]


def test_get_file_content_and_ranges(batch: BatchClient, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    assert b"".join(batch.download_task_file(job_id, task_id, "stdout.txt")) == b"hello from the task\n"
    assert b"".join(batch.download_task_file(job_id, task_id, "wd/out.txt")) == bytes(range(256))
    assert b"".join(batch.download_task_file(job_id, task_id, "wd/out.txt", ocp_range="bytes=10-19")) == bytes(range(10, 20))
    assert b"".join(batch.download_task_file(job_id, task_id, "wd/out.txt", ocp_range="bytes=250-")) == bytes(range(250, 256))


def test_file_properties_headers(live: LiveServer, rest: httpx.Client, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    url = f"/jobs/{job_id}/tasks/{task_id}/files/wd%2Fout.txt"
    head = rest.head(url, params={"api-version": API_VERSION})
    assert head.status_code == 200
    assert head.headers["ocp-batch-file-isdirectory"] == "false"
    assert head.headers["ocp-batch-file-url"] == f"{live.url}/jobs/{job_id}/tasks/{task_id}/files/wd/out.txt"
    assert head.headers["ocp-batch-file-mode"] == "640"
    assert head.headers["content-length"] == "256"
    assert head.headers["ocp-creation-time"].endswith("GMT") and head.headers["last-modified"].endswith("GMT")
    bad_range = rest.get(url, params={"api-version": API_VERSION}, headers={"ocp-range": "bytes=9-2"})
    assert bad_range.status_code == 416 and bad_range.json()["code"] == "InvalidRange"
    later = rest.get(url, params={"api-version": API_VERSION},
                     headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert later.status_code == 304


def test_sdk_file_properties(batch: BatchClient, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    props = batch.get_task_file_properties(job_id, task_id, "stdout.txt")
    assert props.content_length == 20 and props.is_directory is False


def test_delete_files(batch: BatchClient, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, task_dir = ran_task
    batch.delete_task_file(job_id, task_id, "stderr.txt")
    assert not (task_dir / "stderr.txt").exists()
    with pytest.raises(HttpResponseError) as not_empty:
        batch.delete_task_file(job_id, task_id, "wd/sub")
    assert not_empty.value.status_code == 409
    batch.delete_task_file(job_id, task_id, "wd/sub", recursive=True)
    assert not (task_dir / "wd" / "sub").exists()
    with pytest.raises(ResourceNotFoundError) as missing:
        batch.get_task_file_properties(job_id, task_id, "nope.txt")
    assert missing.value.status_code == 404


def test_paths_cannot_escape_the_task_directory(rest: httpx.Client, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    for path in ("..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "wd%2F..%2F..%2Ft2%2Fstdout.txt"):
        response = rest.get(f"/jobs/{job_id}/tasks/{task_id}/files/{path}", params={"api-version": API_VERSION})
        assert response.status_code == 404, path


# -- what a hostile task can leave in its directory ----------------------------------------------


def test_a_fifo_is_refused_at_once_and_blocks_nothing(batch: BatchClient, rest: httpx.Client, ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, task_dir = ran_task
    os.mkfifo(task_dir / "wd" / "pipe")
    q = {"api-version": API_VERSION}
    for _ in range(12):   # more than the file threads: none of them may hang
        response = rest.get(f"/jobs/{job_id}/tasks/{task_id}/files/wd/pipe", params=q, timeout=10)
        assert response.status_code == 409 and response.json()["code"] == "OperationInvalidForCurrentState"
    assert rest.get("/jobs", params=q, timeout=10).status_code == 200
    names = {f.name for f in batch.list_task_files(job_id, task_id, recursive=True)}
    assert "wd/pipe" in names   # listed (it exists), just not readable
    head = rest.head(f"/jobs/{job_id}/tasks/{task_id}/files/wd/pipe", params=q, timeout=10)
    assert head.status_code == 200


def test_dangling_links_and_undecodable_names_are_left_out(batch: BatchClient, rest: httpx.Client,
                                                           ran_task) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, task_dir = ran_task
    (task_dir / "wd" / "dangling").symlink_to(task_dir / "nowhere")
    (task_dir / "wd" / "outside").symlink_to("/etc/hostname")
    (task_dir / "wd" / "loop").symlink_to(task_dir / "wd" / "loop")
    (task_dir / "wd" / "inside").symlink_to(task_dir / "wd" / "out.txt")
    os.close(os.open(os.fsencode(str(task_dir / "wd")) + b"/bad-\xff-name", os.O_CREAT | os.O_WRONLY, 0o644))
    q = {"api-version": API_VERSION}
    for recursive in ("true", "false"):
        response = rest.get(f"/jobs/{job_id}/tasks/{task_id}/files", params={**q, "recursive": recursive})
        assert response.status_code == 200, response.text
    names = {f.name for f in batch.list_task_files(job_id, task_id, recursive=True)}
    assert "wd/inside" in names
    assert not names & {"wd/dangling", "wd/outside", "wd/loop"} and not [n for n in names if "bad-" in n]
    for name in ("dangling", "outside", "loop"):
        assert rest.head(f"/jobs/{job_id}/tasks/{task_id}/files/wd/{name}", params=q).status_code == 404
        assert rest.get(f"/jobs/{job_id}/tasks/{task_id}/files/wd/{name}", params=q).status_code == 404


@pytest.mark.parametrize("name", ["a%0Ab", "a%0Db", "a%00b", "%0A", "wd%2F%0D%0AX-Injected:%201"])
def test_control_characters_in_a_file_name_are_400(rest: httpx.Client, ran_task, name: str) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, _ = ran_task
    q = {"api-version": API_VERSION}
    for method in ("GET", "HEAD", "DELETE"):
        response = rest.request(method, f"/jobs/{job_id}/tasks/{task_id}/files/{name}", params=q)
        assert response.status_code == 400, (method, response.status_code, response.text)
        if method != "HEAD":
            assert response.json()["code"] == "InvalidUri"


@pytest.mark.parametrize("name", ["%2e", ".", "wd/..", "wd%2F..", "./", "wd/sub/../.."])
def test_the_task_directory_itself_cannot_be_deleted(rest: httpx.Client, ran_task, name: str) -> None:  # type: ignore[no-untyped-def]
    job_id, task_id, task_dir = ran_task
    response = rest.delete(f"/jobs/{job_id}/tasks/{task_id}/files/{name}",
                           params={"api-version": API_VERSION, "recursive": "true"})
    assert response.status_code in (400, 404, 405), response.text   # 405: the client normalized it to the list
    assert (task_dir / "stdout.txt").exists() and (task_dir / "wd").is_dir()
