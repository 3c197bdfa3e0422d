"""Figure 8, Slurm-backed pools: N ``/bin/true`` tasks on a pool of 8 nodes x 1 slot whose nodes are Slurm
allocations (``--node-provider slurm``), beside plain ``sbatch --array`` of the same N in the same run.

openbatch is timed from the first AddTaskCollection until Get Task Counts says all completed (the
allocations are up before: bringing 8 nodes up is reported in the notes); ``sbatch --array`` from its
submission until ``squeue`` shows none of its elements. Needs a Slurm that answers (``scripts/slurm.sh``
sets up a single-host one); without it the row says why.
"""

from __future__ import annotations

import shutil
import subprocess

from .. import peers
from ..results import Row, error_row
from ..server import CLIENT_NAME, collection_bodies
from ..suite import Suite
from .runs import run_job

KEY = "slurm"
TITLE = "8 Slurm-backed pool"
NEEDS: tuple[str, ...] = ()
NODES = 8


def _slurm_up() -> str | None:
    if shutil.which("sinfo") is None:
        return "Slurm is not installed (scripts/slurm.sh)"
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    return None if out.returncode == 0 and out.stdout.strip() else f"Slurm does not answer: {out.stderr.strip()}"


def run(suite: Suite) -> list[Row]:
    why = _slurm_up()
    if why:
        return [error_row(TITLE, RuntimeError(why))]
    n = suite.size(2_000, 300)
    with suite.step(f"sbatch --array of {n:,} x /bin/true"):
        try:
            array_rate: float | None = peers._slurm(n)
        except Exception as error:  # noqa: BLE001 - reported in the row
            array_rate, array_error = None, str(error)[:200]
        else:
            array_error = ""
    with suite.server(KEY, node_provider="slurm") as server, server.client() as admin:
        admin.add_pool("sp", nodes=NODES, slots=1)
        with suite.step(f"waiting for {NODES} Slurm nodes"):
            up = admin.wait_nodes_idle("sp", NODES, timeout=120)
        admin.add_job("spjob", "sp")
        done = run_job(suite, server, "spjob", collection_bodies(n), n, suite.budget(300, 90),
                       f"running {n:,} tasks on Slurm nodes")
    completed, elapsed = done.completed, done.elapsed
    rate = completed / elapsed if elapsed else 0.0
    peer = {"sbatch --array": f"{array_rate:,.0f} tasks/s" if array_rate else f"failed: {array_error}"}
    return [Row(TITLE, f"{n:,} x /bin/true, {NODES} Slurm nodes x 1 slot", rate, "tasks/s", None, CLIENT_NAME,
                f"{completed:,}/{n:,} completed in {elapsed:.1f}s; {NODES} allocations up in {up:.1f}s; "
                f"sbatch --array of the same: {array_rate or 0:,.0f} tasks/s", peer, completed < n)]
