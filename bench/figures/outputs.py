"""Figure 7, output files: N tasks each uploading one 64 KiB output file to Blob storage (Azurite),
beside the same N tasks without outputs, on one server, one after the other.

Each task runs ``dd`` to write 64 KiB into its working directory; the upload variant names it in
``outputFiles`` (taskCompletion, to a SAS URL of an Azurite container). Timed from the first
AddTaskCollection until Get Task Counts says all completed; the blobs are then counted. Azurite
comes from ``.tools/azurite`` (``scripts/test.sh`` installs it) or the PATH; without it the figure
says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec

from ..results import Row, error_row
from ..server import CLIENT_NAME
from ..suite import Suite
from .runs import run_job

KEY = "outputs"
TITLE = "7 output files"
NEEDS: tuple[str, ...] = ()
FILE_BYTES = 64 * 1024
COMMAND = f"/bin/dd if=/dev/zero of=out.bin bs={FILE_BYTES} count=1 status=none"
_encode = msgspec.json.Encoder().encode


def _bodies(n: int, prefix: str, container_url: str | None) -> list[bytes]:
    bodies = []
    for start in range(0, n, 100):
        values = []
        for i in range(start, min(n, start + 100)):
            task: dict = {"id": f"{prefix}{i:07d}", "commandLine": COMMAND}
            if container_url:
                task["outputFiles"] = [{"filePattern": "out.bin", "uploadOptions": {"uploadCondition": "taskcompletion"},
                                        "destination": {"container": {"containerUrl": container_url,
                                                                      "path": f"{prefix}/{i:07d}.bin"}}}]
            values.append(task)
        bodies.append(_encode({"value": values}))
    return bodies


def _run_job(suite: Suite, server, job_id: str, bodies: list[bytes], n: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    with server.client() as admin:
        admin.add_job(job_id, "out")
    done = run_job(suite, server, job_id, bodies, n, suite.budget(200, 60), f"{job_id}: {n:,} tasks")
    return done.completed, done.elapsed


def run(suite: Suite) -> list[Row]:
    try:
        from tests.support.azurite import start_azurite
    except ImportError as exc:
        return [error_row(TITLE, exc)]
    n = suite.size(1_000, 200)
    location = Path(tempfile.mkdtemp(prefix="bench-azurite-", dir=suite.data_root))
    try:
        azurite = start_azurite(location)
    except RuntimeError as exc:
        return [error_row(TITLE, exc)]
    try:
        azurite.container("bench")
        url = azurite.sas_url("bench", "cw")
        with suite.server(KEY) as server, server.client() as admin:
            admin.add_pool("out", nodes=2, slots=4)
            with suite.step("waiting for 2 idle nodes"):
                admin.wait_nodes_idle("out", 2, timeout=60)
            plain_done, plain_time = _run_job(suite, server, "plain", _bodies(n, "p", None), n)
            up_done, up_time = _run_job(suite, server, "upload", _bodies(n, "u", url), n)
        blobs = sum(1 for _ in azurite.service().get_container_client("bench").list_blobs())
    finally:
        azurite.stop()
    plain_rate = plain_done / plain_time if plain_time else 0.0
    up_rate = up_done / up_time if up_time else 0.0
    shape = f"{n:,} tasks x dd 64 KiB, 2 nodes x 4 slots"
    note = f"{up_done:,}/{n:,} completed in {up_time:.1f}s; {blobs:,} blobs in the container"
    return [
        Row(TITLE, f"{shape}, no outputs", plain_rate, "tasks/s", None, CLIENT_NAME,
            f"{plain_done:,}/{n:,} completed in {plain_time:.1f}s", partial=plain_done < n),
        Row(TITLE, f"{shape}, each uploading its 64 KiB to Azurite", up_rate, "tasks/s", None, CLIENT_NAME, note,
            partial=up_done < n or blobs < n),
        Row(TITLE, "upload bytes/s", up_rate * FILE_BYTES / (1024 * 1024), "MiB/s", None, "",
            f"{blobs:,} x 64 KiB, at most 8 files at once per agent"),
    ]
