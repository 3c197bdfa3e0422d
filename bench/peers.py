"""Peer figures on the same workload (N runs of ``/bin/true``), measured in the same run.

The raw fork/exec floor is always measured: a ThreadPoolExecutor of 8 workers running
``subprocess.run(["/bin/true"])`` N times, the most a Python process on this machine can
launch with no scheduling at all. Ray, Dask, Celery (Redis broker on 127.0.0.1:6379),
HyperQueue (``hq``) and Slurm (``sbatch``) are measured only with ``--peers`` and when
installed; each runs in its own subprocess (``python -m bench.peers NAME N``) with a
time limit, so a hung peer cannot hang the bench. Nothing here installs anything.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .results import Peer

TRUE = "/bin/true"
REPO = Path(__file__).resolve().parent.parent


def _true(_: object = None) -> int:
    return subprocess.run([TRUE], check=False).returncode


def floor(n: int, workers: int = 8) -> Peer:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        failed = sum(1 for code in pool.map(_true, range(n)) if code != 0)
    elapsed = time.perf_counter() - start
    status = "measured" if not failed else f"measured ({failed} non-zero exits)"
    return Peer("fork/exec floor", n, n / elapsed, status, f"ThreadPoolExecutor({workers}) + subprocess.run")


# -- optional peers, each run inside ``python -m bench.peers NAME N`` --------------------------


def _ray(n: int) -> float:
    import ray  # type: ignore[import-not-found]

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        run = ray.remote(_true)
        ray.get([run.remote() for _ in range(min(n, 50))])  # warm the worker processes
        start = time.perf_counter()
        ray.get([run.remote() for _ in range(n)])
        return n / (time.perf_counter() - start)
    finally:
        ray.shutdown()


def _dask(n: int) -> float:
    from dask.distributed import Client, LocalCluster  # type: ignore[import-not-found]

    cluster = LocalCluster(n_workers=2, threads_per_worker=4, dashboard_address=None)
    with cluster, Client(cluster) as client:
        client.gather(client.map(_true, range(min(n, 50)), pure=False))
        start = time.perf_counter()
        client.gather(client.map(_true, range(n), pure=False))
        return n / (time.perf_counter() - start)


def _celery(n: int) -> float:
    from .peer_celery import app, run_true

    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.peer_celery", "worker",
                               "--concurrency", "8", "--loglevel", "warning", "--without-gossip",
                               "--without-mingle", "--without-heartbeat"], cwd=str(REPO),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_true.delay().get(timeout=60)  # the worker is up
        start = time.perf_counter()
        results = [run_true.delay() for _ in range(n)]
        for result in results:
            result.get(timeout=120)
        return n / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        app.close()


def _hyperqueue(n: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="bench-hq-"))
    hq = shutil.which("hq") or "hq"
    server = subprocess.Popen([hq, "server", "start", "--server-dir", str(root), "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        time.sleep(2)
        worker = subprocess.Popen([hq, "worker", "start", "--server-dir", str(root), "--cpus", "8"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        start = time.perf_counter()
        subprocess.run([hq, "submit", "--server-dir", str(root), "--array", f"1-{n}", "--wait", TRUE],
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
        return n / (time.perf_counter() - start)
    finally:
        subprocess.run([hq, "server", "stop", "--server-dir", str(root)], check=False, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.terminate()
        shutil.rmtree(root, ignore_errors=True)


def _slurm(n: int) -> float:
    out = subprocess.run(["sbatch", "--parsable", f"--array=0-{n - 1}", "--output=/dev/null", "--wrap", TRUE],
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    job = out.split(";")[0]
    start = time.perf_counter()
    for _ in range(100_000):
        left = subprocess.run(["squeue", "-h", "-r", "-j", job], capture_output=True, text=True,
                              timeout=30).stdout
        if not left.strip():
            break
        time.sleep(0.2)
    return n / (time.perf_counter() - start)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


#: name -> (is it installed here, how it is run, the measurement)
OPTIONAL: dict[str, tuple[Callable[[], bool], str, Callable[[int], float]]] = {
    "Ray": (lambda: _has("ray"), "ray.remote, num_cpus=8", _ray),
    "Dask": (lambda: _has("distributed"), "LocalCluster 2 workers x 4 threads", _dask),
    "Celery": (lambda: _has("celery") and _has("redis") and _redis_up(), "8 prefork workers, Redis broker",
               _celery),
    "HyperQueue": (lambda: shutil.which("hq") is not None, "hq submit --array, 1 worker 8 cpus", _hyperqueue),
    "Slurm": (lambda: shutil.which("sbatch") is not None and shutil.which("squeue") is not None,
              "sbatch --array", _slurm),
}


def optional(n: int, run: bool, timeout: float) -> list[Peer]:
    """Each optional peer: measured (with ``run``), or why not."""
    peers = []
    for name, (installed, how, _) in OPTIONAL.items():
        if not installed():
            peers.append(Peer(name, n, None, "not installed", how))
        elif not run:
            peers.append(Peer(name, n, None, "installed; run with --peers", how))
        else:
            peers.append(_measure_in_subprocess(name, n, timeout, how))
    return peers


def _measure_in_subprocess(name: str, n: int, timeout: float, how: str) -> Peer:
    try:
        done = subprocess.run([sys.executable, "-m", "bench.peers", name, str(n)], cwd=str(REPO),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Peer(name, n, None, f"failed: no result in {timeout:.0f}s", how)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return Peer(name, n, None, f"failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:120]}", how)
    return Peer(name, n, float(json.loads(lines[-1])["per_second"]), "measured", how)


def main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    rate = OPTIONAL[name][2](n)
    print(json.dumps({"per_second": rate}))


if __name__ == "__main__":
    main()
