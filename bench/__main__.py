"""``python -m bench``: start openbatch servers and local nodes on loopback, measure, print the table.

    python -m bench                      # the default suite on SQLite (under 10 minutes on 2 cores)
    python -m bench --quick              # small sizes, a smoke run (under 2 minutes)
    python -m bench --store postgres     # the same on a fresh PostgreSQL database (127.0.0.1:5432)
    python -m bench --store both         # SQLite and PostgreSQL, side by side
    python -m bench --only counts scale  # some figures (names or numbers 1-6)
    python -m bench --peers              # also Ray, Dask, Celery, HyperQueue, Slurm where installed
    python -m bench --profile            # servers under a sampling profiler: where their time went
    python -m bench --scale              # how cost grows (slots, job size, memory), drawn to a PNG
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
from rich.console import Console

from . import growth, plots, report
from .database import Databases
from .figures import BY_KEY, FIGURES
from .load import CLIENT_LEGEND as LOAD_LEGEND
from .server import CLIENT_LEGEND
from .results import Peer, Row, error_row
from .suite import Suite, make_progress

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", metavar="FIGURE",
                        help=f"figures to run: {', '.join(f'{i}/{m.KEY}' for i, m in enumerate(FIGURES, 1))}")
    parser.add_argument("--peers", action="store_true", help="measure installed peers (Ray, Dask, ...)")
    parser.add_argument("--json", type=Path,
                        help="where to write the JSON (default bench/results/<timestamp>.json)")
    parser.add_argument("--profile", action="store_true", help="run the servers under bench.sampler")
    parser.add_argument("--scale", action="store_true",
                        help="instead of the figures: how cost grows with slots and job size (bench/growth.py), "
                             "drawn to a PNG beside the JSON")
    parser.add_argument("--png", type=Path, help="with --scale: where to draw the picture")
    parser.add_argument("--dashboards", type=int, default=0, metavar="N",
                        help="keep N dashboards open on every server while it is measured (bench/dashboard.py)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG", dest="server_args",
                        help="pass ARG to every `openbatch serve` (repeat it; e.g. --server-arg=--no-prefetch)")
    parser.add_argument("--data-root", type=Path, default=default_data_root(),
                        help="where the servers' data directories (SQLite file, node roots) go "
                             "(default: /dev/shm when it exists, else the system temp directory)")
    return parser.parse_args(argv)


def default_data_root() -> Path:
    """tmpfs when there is one: on a disk, creating the tasks' files can cost far more right after
    a large delete (ext4 without a journal here), so figure 1 would depend on what ran before."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def selected(only: list[str] | None) -> list[ModuleType]:
    if not only:
        return list(FIGURES)
    numbered = {str(i): m for i, m in enumerate(FIGURES, 1)}
    chosen = []
    for name in only:
        module = BY_KEY.get(name) or numbered.get(name)
        if module is None:
            raise SystemExit(f"unknown figure {name!r}; choose from {', '.join(BY_KEY)} or 1-6")
        chosen.append(module)
    return sorted(set(chosen), key=FIGURES.index)


StoreRun = tuple[list[Row], list[Peer], dict[str, Path], float, list[dict[str, Any]]]


def run_store(store: str, figures: list[ModuleType], args: argparse.Namespace, console: Console,
              profile_dir: Path | None) -> StoreRun:
    """The figures on one store: (rows, peers, profiles, seconds, CPU per server)."""
    progress = make_progress(console)
    databases = Databases(store)
    suite = Suite(store, args.quick, console, progress, databases, args.peers, profile_dir, args.data_root,
                  dashboards=args.dashboards, server_args=args.server_args)
    rows: list[Row] = []
    began = time.monotonic()
    try:
        with progress:
            for index, figure in enumerate(figures):
                started = time.monotonic()
                with suite.step(f"[bold]{figure.TITLE}[/] ({store})"):
                    try:
                        rows += figure.run(suite)
                    except KeyboardInterrupt:
                        rows.append(error_row(figure.TITLE, RuntimeError("interrupted")))
                        suite.log("[red]interrupted[/]: reporting what was measured")
                        break
                    except Exception as exc:  # noqa: BLE001 - one figure failing must not lose the others
                        rows.append(error_row(figure.TITLE, exc))
                        suite.log(f"[red]{figure.TITLE} failed:[/] {exc}")
                    for name in list(suite.closers):
                        if not any(name in later.NEEDS for later in figures[index + 1:]):
                            suite.release(name)
                suite.log(f"{figure.TITLE} ({store}) took {time.monotonic() - started:.0f}s")
    finally:
        suite.close()
        databases.close()
    return rows, suite.fixtures.get("peers", []), suite.profiles, time.monotonic() - began, suite.cpu


def run_scale(store: str, args: argparse.Namespace, console: Console) -> tuple[list[dict[str, Any]], float]:
    """The growth study (bench/growth.py) on one store: (points, seconds)."""
    progress = make_progress(console)
    databases = Databases(store)
    suite = Suite(store, args.quick, console, progress, databases, data_root=args.data_root,
                  server_args=args.server_args)
    began = time.monotonic()
    try:
        with progress:
            points = [point.to_json() for point in growth.run(suite)]
    finally:
        suite.close()
        databases.close()
    return points, time.monotonic() - began


def scale_main(args: argparse.Namespace, argv: list[str] | None, console: Console, stores: list[str]) -> int:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or RESULTS / f"{stamp}-scale.json"
    png = args.png or out.with_suffix(".png")
    start = machine()
    console.print(f"openbatch bench --scale on {', '.join(stores)}; {start['cpus']} cores, reference loop "
                  f"{start['reference_ms']:.0f} ms; data in {args.data_root}")
    points: dict[str, list[dict[str, Any]]] = {}
    durations: dict[str, float] = {}
    for store in stores:
        points[store], durations[store] = run_scale(store, args, console)
    after = machine(start)
    for table in plots.tables(points):
        console.print(table)
    for store, found in points.items():
        for point in found:
            if point["note"]:
                console.print(f"  [cyan]{store} {point['series']} {point['x']:,}[/]: {point['note']}", highlight=False)
    title = (f"openbatch --scale{' --quick' if args.quick else ''}, {after['cpus']} cores, "
             f"reference loop {after['reference_ms_start']:.0f} ms ({stamp})")
    report.write_json(out, {"started": stamp, "command": " ".join(["python -m bench", *(argv or sys.argv[1:])]),
                            "quick": args.quick, "machine": after, "seconds_per_store": durations,
                            "data_root": str(args.data_root), "points": points})   # (before drawing can fail)
    plots.draw(points, png, title)
    console.print(f"JSON: {out}\nPNG: {png}")
    return 0


def reference_ms() -> float:
    """A fixed pure-Python workload's time, best of 3: how fast this machine runs Python right now.

    Shared virtual machines vary by tens of percent from hour to hour; runs are comparable
    only next to this figure (the fork/exec floor plays that part for figure 1).
    """
    best = float("inf")
    for _ in range(3):
        began, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - began)
    return round(best * 1e3, 1)


def machine(start: dict[str, Any] | None = None) -> dict[str, Any]:
    now = {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
           "cpu_times": psutil.cpu_times()._asdict(), "reference_ms": reference_ms()}
    if start is None:
        return now
    busy = lambda t: sum(v for k, v in t.items() if k not in ("idle", "iowait", "steal"))  # noqa: E731
    used = busy(now["cpu_times"]) - busy(start["cpu_times"])
    total = sum(now["cpu_times"].values()) - sum(start["cpu_times"].values())
    steal = now["cpu_times"].get("steal", 0.0) - start["cpu_times"].get("steal", 0.0)
    return {"cpus": now["cpus"], "load_average_start": start["load_average"],
            "load_average_end": now["load_average"],
            "machine_busy_percent": round(100 * used / total, 1) if total else None,
            "steal_percent": round(100 * steal / total, 1) if total else None,
            "reference_ms_start": start["reference_ms"], "reference_ms_end": now["reference_ms"]}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    width = shutil.get_terminal_size((200, 40)).columns if sys.stdout.isatty() else 200
    console = Console(width=max(width, 160))
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    if args.scale:
        if args.profile or args.dashboards or args.only:
            raise SystemExit("--scale measures on its own: without --only, --profile or --dashboards")
        return scale_main(args, argv, console, stores)
    figures = selected(args.only)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or RESULTS / f"{stamp}.json"
    profile_dir = (RESULTS / f"{stamp}-profiles") if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    start = machine()
    console.print(f"openbatch bench: {'quick' if args.quick else 'default'} suite on {', '.join(stores)}; "
                  f"{start['cpus']} cores, load average {start['load_average'][0]:.2f}, reference loop "
                  f"{start['reference_ms']:.0f} ms; data in {args.data_root}")
    began = time.monotonic()
    runs: dict[str, list[Row]] = {}
    peers: list[Peer] = []
    profiles: dict[str, dict[str, Path]] = {}
    durations: dict[str, float] = {}
    cpu: dict[str, list[dict[str, Any]]] = {}
    for store in stores:
        rows, found, profiled, took, cpu[store] = run_store(store, figures, args, console, profile_dir)
        runs[store], profiles[store], durations[store] = rows, profiled, took
        peers = peers or found
    wall = time.monotonic() - began
    after = machine(start)
    console.print(report.table(runs))
    console.print(f"clients: {CLIENT_LEGEND}\n         {LOAD_LEGEND}", highlight=False)
    if peers:
        console.print(report.peers_table(peers))
    report.notes(console, runs)
    for store, used in cpu.items():
        console.print(report.cpu_table(store, used))
    profile_data: dict[str, Any] = {}
    for store, named in profiles.items():
        for name, path in named.items():
            if path.exists():
                data = json.loads(path.read_text())
                profile_data[f"{store}/{name}"] = data
                console.print(report.profile_table(f"{store}/{name}", data))
    console.print(f"wall time {wall:.0f}s ({', '.join(f'{s} {d:.0f}s' for s, d in durations.items())}); "
                  f"machine busy {after['machine_busy_percent']}% of {after['cpus']} cores during the run "
                  f"(load average {after['load_average_start'][0]:.2f} → {after['load_average_end'][0]:.2f}, "
                  f"stolen by the hypervisor {after['steal_percent']}%); reference loop {after['reference_ms_start']:.0f}"
                  f" → {after['reference_ms_end']:.0f} ms (a fixed Python workload: compare runs by it); "
                  f"servers' data in {args.data_root}")
    document = {
        "started": stamp, "wall_seconds": round(wall, 1), "seconds_per_store": durations,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick, "machine": after, "data_root": str(args.data_root),
        "stores": {s: [r.to_json() for r in rows] for s, rows in runs.items()},
        "peers": [vars(p) for p in peers], "cpu": cpu, "profiles": profile_data,
    }
    report.write_json(out, document)
    console.print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
