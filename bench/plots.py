"""The picture and the table of ``python -m bench --scale`` (see :mod:`bench.growth`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from .report import STORE_NAMES
from .results import format_value

#: (series, metric, label) of the table's rows, in order.
COLUMNS = {
    "slots": [("tasks_per_s", "openbatch tasks/s"), ("floor_per_s", "fork/exec floor tasks/s")],
    "size": [("tasks_per_s", "tasks/s (last N)"), ("counts_p50_ms", "Get Task Counts p50 ms"),
             ("counts_p99_ms", "Get Task Counts p99 ms"), ("first_page_ms", "Task List first page ms"),
             ("completed_page_ms", "state eq 'completed' page ms"),
             ("running_page_ms", "state eq 'running' page ms"), ("rss_mib", "server RSS MiB")],
}
TITLES = {"slots": "tasks/s against task slots", "size": "against tasks in the job"}
#: Per store: line style and marker (SQLite solid, PostgreSQL dashed); per metric of the latency panel: a colour.
STYLE = {"sqlite": "-o", "postgres": "--s"}
COLOURS = {"counts_p99_ms": "tab:blue", "first_page_ms": "tab:orange", "completed_page_ms": "tab:green",
           "running_page_ms": "tab:red"}


def tables(points: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """One table per series: a row per x, a column per store and metric."""
    result = []
    stores = list(points)
    for series, columns in COLUMNS.items():
        table = Table(title=f"scale: {TITLES[series]}", header_style="bold")
        table.add_column("slots" if series == "slots" else "tasks in job", justify="right")
        for store in stores:
            for _, label in columns:
                table.add_column(f"{STORE_NAMES.get(store, store)}\n{label}", justify="right")
        xs = sorted({p["x"] for store in stores for p in points[store] if p["series"] == series})
        for x in xs:
            cells = [f"{x:,}"]
            for store in stores:
                found = next((p for p in points[store] if p["series"] == series and p["x"] == x), None)
                for metric, _ in columns:
                    cells.append(format_value(found["values"].get(metric)) if found else "—")
            table.add_row(*cells)
        result.append(table)
    return result


def draw(points: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    """Four panels: tasks/s against slots; tasks/s, latencies and RSS against tasks in the job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    (slots_ax, size_ax), (latency_ax, memory_ax) = axes
    for store, found in points.items():
        name, style = STORE_NAMES.get(store, store), STYLE.get(store, "-^")
        slots = sorted((p for p in found if p["series"] == "slots"), key=lambda p: p["x"])
        sizes = sorted((p for p in found if p["series"] == "size"), key=lambda p: p["x"])
        _line(slots_ax, slots, "tasks_per_s", style, f"openbatch, {name}")
        _line(size_ax, sizes, "tasks_per_s", style, name)
        for metric, label in (("counts_p99_ms", "counts p99"), ("first_page_ms", "first page"),
                              ("completed_page_ms", "'completed' page"), ("running_page_ms", "'running' page")):
            _line(latency_ax, sizes, metric, style, f"{label}, {name}", color=COLOURS[metric])
        _line(memory_ax, sizes, "rss_mib", style, name)
    floor = next((found for found in points.values() if any(p["series"] == "slots" for p in found)), [])
    _line(slots_ax, sorted((p for p in floor if p["series"] == "slots"), key=lambda p: p["x"]), "floor_per_s",
          "--", "fork/exec floor (threads = slots)", color="grey")
    _axes(slots_ax, "task slots (local nodes)", "tasks/s", "/bin/true tasks/s against slots", log_y=False)
    slots_ax.set_xscale("log", base=2)
    _axes(size_ax, "tasks in the job", "tasks/s", "tasks/s of the last N tasks against job size")
    _axes(latency_ax, "tasks in the job", "ms (median; counts p99)", "latency against job size", log_y=True)
    _axes(memory_ax, "tasks in the job", "MiB", "server RSS against tasks held")
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _line(ax: Any, points: list[dict[str, Any]], metric: str, style: str, label: str, **kw: Any) -> None:
    pairs = [(p["x"], p["values"].get(metric)) for p in points if p["values"].get(metric) is not None]
    if pairs:
        ax.plot([x for x, _ in pairs], [y for _, y in pairs], style, label=label, **kw)


def _axes(ax: Any, xlabel: str, ylabel: str, title: str, log_y: bool = False) -> None:
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
