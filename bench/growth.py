"""``python -m bench --scale``: how cost grows with the work, measured on one store.

Two servers, one after the other:

- **slots**: N ``/bin/true`` tasks (5,000; 500 with ``--quick``) through a fresh pool of 1, 2, 4, 8, 16
  and 32 task slots (one node up to 4 slots, then nodes of 4 slots), timed like figure 1; beside each, the
  raw fork/exec floor with as many threads as slots.
- **job size**: one job on a pool of 2 nodes x 4 slots grows to 1,000, 10,000, 100,000 and 1,000,000
  tasks (50,000 at most with ``--quick``). At each size the job is first filled with completed tasks by
  the fast path of :mod:`bench.bigjob`, then the last N tasks (at most the size) run through the API (tasks/s with a job
  that large); then, at that size: Get Task Counts latency (one client, back to back), the first Task
  List page (1,000), the first page of ``$filter=state eq 'completed'`` and of ``$filter=state eq
  'running'`` (none are: the whole job must not be scanned to say so), and the server's RSS.

What grows faster than it should (memory with tasks held, page latency with the job) shows in the
picture :mod:`bench.plots` draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import bigjob, peers
from .figures.runs import run_job
from .measure import Deadline, percentile, time_calls
from .server import Client, collection_bodies
from .suite import Suite

#: Tasks per measured run (a shorter run is mostly noise on a shared 2-core machine).
RUN, QUICK_RUN = 5_000, 500
SLOTS = [1, 2, 4, 8, 16, 32]
SIZES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [1_000, 10_000, 50_000]
MIB = 1024 * 1024
PAGE_REPEAT = 7
COUNTS_CALLS = 300


@dataclass
class Point:
    """One measured point of a series: its x and what was measured there."""

    series: str
    x: int
    values: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _layout(slots: int) -> tuple[int, int]:
    """(nodes, slots per node) for a pool of ``slots`` task slots: one node up to 4, then nodes of 4."""
    return (1, slots) if slots <= 4 else (slots // 4, 4)


def slots_series(suite: Suite, points: list[Point]) -> None:
    n = suite.size(RUN, QUICK_RUN)
    with suite.server("scale-slots") as server, server.client() as admin:
        for slots in SLOTS:
            nodes, per_node = _layout(slots)
            pool, job = f"slots{slots}", f"slots{slots}"
            with suite.step(f"fork/exec floor, {slots} threads"):
                floor = peers.floor(n, workers=slots)
            admin.add_pool(pool, nodes=nodes, slots=per_node)
            with suite.step(f"waiting for {nodes} idle node(s) of {per_node} slots"):
                admin.wait_nodes_idle(pool, nodes, timeout=120)
            admin.add_job(job, pool)
            done = run_job(suite, server, job, collection_bodies(n), n, suite.budget(120, 40),
                           f"{n:,} tasks on {slots} slot(s)")
            rate = done.completed / done.elapsed if done.elapsed > 0 else None
            points.append(Point("slots", slots, {"tasks_per_s": rate, "floor_per_s": floor.per_second},
                                f"{nodes} x {per_node} slots; {done.completed:,}/{n:,} completed in "
                                f"{done.elapsed:.1f}s"))
            admin.delete(f"/pools/{pool}")
            admin.delete(f"/jobs/{job}")


def _latencies(suite: Suite, client: Client, job: str) -> dict[str, float | None]:
    path = f"/jobs/{job}/tasks"
    counts = time_calls(lambda: client.task_counts(job), COUNTS_CALLS, 20)
    pages: dict[str, list[float]] = {"first": [], "completed": [], "running": []}
    calls = {"first": lambda: client.ok(client.get(path)),
             "completed": lambda: client.ok(client.get(path, {"$filter": "state eq 'completed'"})),
             "running": lambda: client.ok(client.get(path, {"$filter": "state eq 'running'"}))}
    with suite.step("counts and list pages", total=PAGE_REPEAT):
        for _ in range(PAGE_REPEAT):   # in turns, so that they meet the same noise
            for name, call in calls.items():
                pages[name] += time_calls(call, 1, 30)
    return {"counts_p50_ms": percentile(counts, 50), "counts_p99_ms": percentile(counts, 99),
            "first_page_ms": percentile(pages["first"], 50),
            "completed_page_ms": percentile(pages["completed"], 50),
            "running_page_ms": percentile(pages["running"], 50)}


def size_series(suite: Suite, points: list[Point]) -> None:
    n = suite.size(RUN, QUICK_RUN)
    sizes = QUICK_SIZES if suite.quick else SIZES
    first = len(points)
    with suite.server("scale-size") as server, server.client() as client:
        client.add_pool("grow", nodes=2, slots=4)
        with suite.step("waiting for 2 idle nodes"):
            client.wait_nodes_idle("grow", 2, timeout=60)
        client.add_job("grow", "grow")
        held = 0
        rss_empty = server.rss()
        for size in sizes:
            run_n = min(n, size - held)
            fill = size - run_n - held
            if fill > 0:
                with suite.step(f"filling the job to {size - run_n:,} completed tasks (fast path)", total=fill) as step:
                    held += bigjob.insert_tasks(server, "grow", held, held + fill, mix=["succeeded"], prefix="f",
                                                advance=step.advance, deadline=Deadline(suite.budget(300, 60)))
                bigjob.analyze(server)
            done = run_job(suite, server, "grow", collection_bodies(run_n, prefix=f"r{size}-"), held + run_n,
                           suite.budget(120, 40), f"{run_n:,} tasks in a job of {held + run_n:,}")
            ran = max(0, done.completed - held)
            held = done.completed
            values = {"tasks_per_s": ran / done.elapsed if done.elapsed > 0 else None,
                      **_latencies(suite, client, "grow"), "rss_mib": server.rss() / MIB}
            note = f"{ran:,}/{run_n:,} ran in {done.elapsed:.1f}s"
            if len(points) == first:
                note += f"; server RSS {rss_empty / MIB:.0f} MiB before the first task"
            if ran < run_n:   # what is left would run during the next size and inflate its figure
                points.append(Point("size", held, values, note + "; not finished in its time budget: the series "
                                    "stops here"))
                return
            points.append(Point("size", held, values, note))


def run(suite: Suite) -> list[Point]:
    """Both series; one that fails keeps the points it measured and says why it stopped."""
    points: list[Point] = []
    for series in (slots_series, size_series):
        try:
            series(suite, points)
        except Exception as exc:  # noqa: BLE001 - the other series and the measured points are kept
            suite.log(f"[red]{series.__name__} failed:[/] {exc}")
            points.append(Point("error", 0, {}, f"{series.__name__} failed: {type(exc).__name__}: {exc}"))
    return points
