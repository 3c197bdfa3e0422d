"""The whole picture for operators: pools with their nodes and targets, jobs and tasks by state.

Read in one read transaction from counters and grouped columns (never task rows), so it costs the
same at a million tasks as at ten: /metrics, the dashboard's overview and ``openbatch status`` use it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..domain import clock
from ..store import overview_queries as queries
from .context import ServiceContext

#: Task states as the counters keep them (``running`` includes ``preparing``).
TASK_STATES = ("active", "running", "completed")


@dataclass
class PoolSummary:
    account: str
    id: str
    state: str
    allocation_state: str
    vm_size: str
    target_dedicated: int
    target_low_priority: int
    enable_auto_scale: bool
    #: Nodes by (state, dedicated); their slots, and the slots in use.
    nodes: Counter[tuple[str, bool]] = field(default_factory=Counter)
    slots: int = 0
    used_slots: int = 0
    #: Tasks of the pool's jobs by state (active, running, completed), and completed ones by result.
    tasks: Counter[str] = field(default_factory=Counter)
    succeeded: int = 0
    failed: int = 0


@dataclass
class Overview:
    pools: list[PoolSummary]
    #: (account, state) -> jobs.
    jobs: Counter[tuple[str, str]]
    #: Tasks of jobs whose pool does not exist (yet: an auto pool being made; or any more), by account and state.
    tasks_without_pool: Counter[tuple[str, str]]

    def tasks(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for pool in self.pools:
            total.update(pool.tasks)
        for (_, state), number in self.tasks_without_pool.items():
            total[state] += number
        return total

    def nodes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for pool in self.pools:
            for (state, _), number in pool.nodes.items():
                total[state] += number
        return total


class OverviewService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def ping(self) -> None:
        """Raises if the store cannot be reached."""
        with self.ctx.store.read_statement() as conn:
            queries.ping(conn)

    def job_progress(self, account: str, limit: int = 100, states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return job_progress(self.ctx, account, limit, states)

    def overview(self, account: str | None = None) -> Overview:
        """Of one account, or (None) of every account: for /metrics."""
        with self.ctx.store.read() as conn:
            pool_rows = queries.pools(conn, account)
            node_rows = queries.nodes_by_pool(conn, account)
            task_rows = queries.task_counts_by_pool(conn, account)
            job_rows = queries.jobs_by_state(conn, account)
        summaries: dict[tuple[str, str], PoolSummary] = {}
        for owner, key, body in pool_rows:
            summaries[(owner, key)] = PoolSummary(
                account=owner, id=body["id"], state=body["state"], allocation_state=body["allocationState"],
                vm_size=body.get("vmSize", ""), target_dedicated=int(body.get("targetDedicatedNodes") or 0),
                target_low_priority=int(body.get("targetLowPriorityNodes") or 0),
                enable_auto_scale=bool(body.get("enableAutoScale")))
        for row in node_rows:
            summary = summaries.get((row["account"], row["pool_id_key"]))
            if summary is not None:   # (a node of a pool being deleted in between: not counted)
                summary.nodes[(row["state"], bool(row["dedicated"]))] += int(row["nodes"])
                summary.slots += int(row["slots"] or 0)
                summary.used_slots += int(row["used_slots"] or 0)
        orphans: Counter[tuple[str, str]] = Counter()
        for row in task_rows:
            summary = summaries.get((row["account"], row["pool_id_key"])) if row["pool_id_key"] else None
            for state in TASK_STATES:
                number = int(row[f"task_{state}"] or 0)
                if summary is not None:
                    summary.tasks[state] += number
                else:
                    orphans[(row["account"], state)] += number
            if summary is not None:
                summary.succeeded += int(row["task_succeeded"] or 0)
                summary.failed += int(row["task_failed"] or 0)
        jobs: Counter[tuple[str, str]] = Counter({(owner, state): int(n) for owner, state, n in job_rows})
        return Overview(list(summaries.values()), jobs, +orphans)


def job_progress(ctx: ServiceContext, account: str, limit: int, states: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The account's newest jobs with their tasks by state (from the jobs' counters)."""
    with ctx.store.read() as conn:
        rows = queries.recent_jobs(conn, account, limit, states)
        pools = {key: body["id"] for _, key, body in queries.pools(conn, account)}
    return [{
        "id": row["id"], "state": row["state"], "priority": row["priority"],
        "poolId": pools.get(row["pool_id_key"], row["pool_id_key"]),
        "creationTime": clock.to_wire(row["creation_time"]),
        "taskCounts": {name: int(row[f"task_{name}"]) for name in ("active", "running", "completed", "succeeded",
                                                                     "failed")},
    } for row in rows]


def as_json(overview: Overview) -> dict[str, Any]:
    """The overview as plain JSON (the dashboard and ``openbatch status`` read it)."""
    return {
        "pools": [{
            "account": p.account, "id": p.id, "state": p.state, "allocationState": p.allocation_state,
            "vmSize": p.vm_size, "targetDedicatedNodes": p.target_dedicated,
            "targetLowPriorityNodes": p.target_low_priority, "enableAutoScale": p.enable_auto_scale,
            "nodes": _by_state(p.nodes), "slots": p.slots, "usedSlots": p.used_slots,
            "tasks": {state: p.tasks[state] for state in TASK_STATES}, "succeeded": p.succeeded,
            "failed": p.failed,
        } for p in overview.pools],
        "jobs": dict(_sum_by_state(overview.jobs)),
        "tasks": {state: overview.tasks()[state] for state in TASK_STATES},
        "nodes": dict(overview.nodes()),
    }


def _by_state(nodes: Counter[tuple[str, bool]]) -> dict[str, int]:
    return dict(_sum_by_state({(dedicated, state): n for (state, dedicated), n in nodes.items()}))


def _sum_by_state(counts: Any) -> Counter[str]:
    """Counts keyed (anything, state) summed by state."""
    total: Counter[str] = Counter()
    for (_, state), number in counts.items():
        total[state] += number
    return total
