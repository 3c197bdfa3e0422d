"""The results: a rich table on the terminal and the same as JSON (``bench/results/<timestamp>.json``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .results import Peer, Row, format_value

STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _verdict(row: Row) -> str:
    passed = row.passed
    if passed is None:
        return "[dim]n/a[/]" if row.target else ""
    mark = "[green]yes[/]" if passed else "[red]no[/]"
    return mark + (" [yellow](partial)[/]" if row.partial else "")


def _value(row: Row | None) -> str:
    if row is None:
        return "[dim]not run[/]"
    if row.value is None or (isinstance(row.value, float) and math.isnan(row.value)):
        return "[dim]—[/]"
    if row.unit == "bool":
        return "yes" if row.value else "[red]no[/]"
    return format_value(row.value)


def _peers_cell(peers: dict[str, str]) -> str:
    """"fork/exec floor: 1,111 tasks/s; Ray, Dask: not installed" (peers with the same text grouped)."""
    grouped: dict[str, list[str]] = {}
    for name, text in peers.items():
        grouped.setdefault(text, []).append(name)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in grouped.items())


def _key(row: Row) -> tuple[str, str]:
    return (row.figure, row.metric)


def table(runs: dict[str, list[Row]]) -> Table:
    """One row per measured figure; one value and verdict column per store, side by side."""
    stores = list(runs)
    result = Table(title="openbatch bench", show_lines=False, header_style="bold")
    result.add_column("figure", no_wrap=True)
    result.add_column("metric")
    for store in stores:
        result.add_column(STORE_NAMES.get(store, store), justify="right", no_wrap=True)
        label = "met" if len(stores) == 1 else f"met ({STORE_NAMES.get(store, store)})"
        result.add_column(label, no_wrap=True)
    result.add_column("unit", no_wrap=True)
    result.add_column("target", no_wrap=True)
    result.add_column("client", no_wrap=True)
    result.add_column("peers, same run")
    order: list[tuple[str, str]] = []
    found: dict[str, dict[tuple[str, str], Row]] = {}
    for store, rows in runs.items():
        found[store] = {}
        for row in rows:
            found[store][_key(row)] = row
            if _key(row) not in order:
                order.append(_key(row))
    for key in order:
        rows_here = [found[s].get(key) for s in stores]
        sample = next(r for r in rows_here if r is not None)
        cells: list[str] = []
        for row in rows_here:
            cells += [_value(row), _verdict(row) if row else ""]
        peers = _peers_cell(sample.peers)
        target = sample.target.text(sample.unit) if sample.target else ""
        result.add_row(sample.figure, sample.metric, *cells, sample.unit if sample.unit != "bool" else "",
                       target, sample.client, peers)
    return result


def notes(console: Console, runs: dict[str, list[Row]]) -> None:
    for store, rows in runs.items():
        console.print(f"[bold]Notes ({STORE_NAMES.get(store, store)})[/]")
        for row in rows:
            if row.note:
                console.print(f"  [cyan]{row.figure}[/] · {row.metric}: {row.note}", highlight=False)


def peers_table(peers: list[Peer]) -> Table:
    result = Table(title="peers on the same workload (this run)", header_style="bold")
    for name in ("system", "tasks", "tasks/s", "status", "how"):
        result.add_column(name, justify="right" if name in ("tasks", "tasks/s") else "left")
    for peer in peers:
        result.add_row(peer.name, f"{peer.tasks:,}", format_value(peer.per_second), peer.status, peer.how)
    return result


def profile_table(name: str, profile: dict[str, Any], top: int = 16) -> Table:
    """Where the server's CPU went (``bench.sampler``): openbatch functions by cumulative CPU, then the
    functions (any) with the most CPU of their own."""
    total = max(1e-9, float(profile.get("cpu_seconds", 0.0)))
    threads = profile.get("threads")
    result = Table(title=f"server CPU profile: {name} ({total:.1f} CPU s profiled, {threads} threads)",
                   header_style="bold")
    result.add_column("openbatch function (cumulative CPU)")
    result.add_column("CPU", justify="right")
    result.add_column("calls", justify="right")
    result.add_column("function (own CPU)")
    result.add_column("CPU", justify="right")
    ours = [row for row in profile.get("cumulative", []) if row[0].startswith("openbatch/")][:top]
    own = profile.get("own", [])[:top]
    for i in range(max(len(ours), len(own))):
        left = ours[i] if i < len(ours) else None
        right = own[i] if i < len(own) else None
        result.add_row(left[0] if left else "", f"{100 * left[1] / total:.0f}%" if left else "",
                       f"{left[2]:,}" if left else "", right[0] if right else "",
                       f"{100 * right[1] / total:.0f}%" if right else "")
    return result


def cpu_table(store: str, cpu: list[dict[str, Any]]) -> Table:
    """Was the server CPU-bound? Its CPU seconds against the wall time it ran (one core = 100%)."""
    result = Table(title=f"CPU per server ({STORE_NAMES.get(store, store)})", header_style="bold")
    for name in ("server for", "ran", "server CPU", "of one core", "agents", "agents CPU"):
        result.add_column(name, justify="left" if name == "server for" else "right")
    for entry in cpu:
        wall = max(1e-9, float(entry.get("wall", 0.0)))
        server = float(entry.get("server", 0.0))
        result.add_row(str(entry["server_for"]), f"{wall:.0f}s", f"{server:.0f}s",
                       f"{100 * server / wall:.0f}%", str(entry.get("agent_processes", "")),
                       f"{float(entry.get('agents', 0.0)):.0f}s")
    return result


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str))
