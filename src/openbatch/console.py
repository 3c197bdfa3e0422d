"""``openbatch status`` and ``openbatch watch``: what an operator reaches for at a terminal.

Both are clients of a running server over its HTTP API, signed with the account's key like any SDK:
``status`` reads openbatch's overview operation, ``watch`` a job's task counts, until the job ends.
``az batch`` remains the full client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .auth.client import SharedKeyAuth
from .config import KEY_FILE

API_VERSION = "2024-07-01.20.0"
#: Node states in the order a pool's row shows them (any other state follows).
NODE_STATES = ("idle", "running", "starting", "waitingforstarttask", "creating", "rebooting", "reimaging",
               "leavingpool", "preempted", "offline", "unusable", "starttaskfailed", "unknown")


class ClientError(SystemExit):
    """The server could not be reached or refused: the message says which (the command ends with it)."""


@dataclass
class Connection:
    server: str
    account: str
    key: str

    @classmethod
    def resolve(cls, server: str, account: str, key: str | None, data_dir: Path, command: str) -> "Connection":
        """The key given, or the one ``openbatch serve`` keeps in its data directory."""
        stored = data_dir / KEY_FILE
        if not key and not stored.exists():
            raise ClientError(f"openbatch {command}: give the account key (--key or OPENBATCH_KEY)")
        return cls(server.rstrip("/"), account, key or stored.read_text().strip())

    def get(self, path: str) -> Any:
        try:
            response = httpx.get(f"{self.server}{path}", params={"api-version": API_VERSION},
                                 auth=SharedKeyAuth(self.account, self.key), timeout=30)
        except httpx.HTTPError as error:
            raise ClientError(f"openbatch: cannot reach {self.server}: {error}") from None
        if response.status_code != 200:
            error = response.json() if response.content else {}
            raise ClientError(f"openbatch: {response.status_code} {error.get('code', '')}: "
                              f"{(error.get('message') or {}).get('value', response.text)}")
        return response.json()


def status_table(overview: dict[str, Any]) -> Group:
    """The overview page of the dashboard, as tables: pools with nodes, slots and tasks; totals."""
    pools = Table(title="pools", title_justify="left", expand=False)
    for column in ("pool", "state", "nodes", "slots used", "active", "running", "succeeded", "failed"):
        pools.add_column(column, justify="left" if column in ("pool", "state", "nodes") else "right")
    for pool in overview["pools"]:
        state = pool["state"] if pool["allocationState"] == "steady" else f"{pool['state']}, {pool['allocationState']}"
        target = pool["targetDedicatedNodes"] + pool["targetLowPriorityNodes"]
        nodes = ", ".join(f"{number} {state}" for state, number in _ordered(pool["nodes"])) or "none"
        pools.add_row(pool["id"], state, f"{nodes} (target {target})", f"{pool['usedSlots']}/{pool['slots']}",
                      str(pool["tasks"]["active"]), str(pool["tasks"]["running"]), str(pool["succeeded"]),
                      str(pool["failed"]))
    totals = Table.grid(padding=(0, 2))
    tasks, jobs = overview["tasks"], overview["jobs"]
    totals.add_row("tasks", f"{tasks['active']} active", f"{tasks['running']} running",
                   f"{tasks['completed']} completed")
    totals.add_row("jobs", *(f"{number} {state}" for state, number in sorted(jobs.items())) or ["none"])
    totals.add_row("nodes", *(f"{number} {state}" for state, number in _ordered(overview["nodes"])) or ["none"])
    return Group(pools, totals)


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    rank = {state: i for i, state in enumerate(NODE_STATES)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def status(connection: Connection, console: Console | None = None) -> None:
    (console or Console()).print(status_table(connection.get("/openbatch/overview")))


def watch(connection: Connection, job_id: str, interval: float = 0.5, console: Console | None = None) -> int:
    """Show the job's tasks progress until the job completes, or (a job left active when its tasks end)
    until none is active or running; the exit status: 0 if no task failed, 1 otherwise."""
    console = console or Console()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console)
    bar = progress.add_task(job_id, total=None, detail="")
    with Live(progress, console=console, refresh_per_second=8, transient=False):
        while True:
            job = connection.get(f"/jobs/{job_id}")
            counts = connection.get(f"/jobs/{job_id}/taskcounts")["taskCounts"]
            total = counts["active"] + counts["running"] + counts["completed"]
            detail = (f"{counts['active']} active, {counts['running']} running, {counts['succeeded']} succeeded, "
                      f"{counts['failed']} failed  job {job['state']}")
            progress.update(bar, total=total or None, completed=counts["completed"], detail=detail)
            if job["state"] == "completed" or (total and counts["active"] + counts["running"] == 0):
                break
            time.sleep(interval)
    if counts["failed"]:
        console.print(f"[red]{counts['failed']} of {total} task(s) failed[/red]")
        return 1
    console.print(f"[green]all {total} task(s) succeeded[/green]" if total else "the job has no tasks")
    return 0
