"""Where figure 1's CPU goes, per task: the tasks' own processes, the agents, the server, the database
and the bench's own clients, measured over the run (not the server's start), with the machine's idle share.

It answers whether "% of the fork/exec floor" is bound by CPU: on 2 cores, a rate of R tasks/s leaves
2/R seconds of CPU a task for everything; what the tasks take themselves is not openbatch's to cut.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

CORES = os.cpu_count() or 1


def _used(times: Any) -> float:
    return float(times.user + times.system)


def _database() -> float:
    """CPU seconds of every PostgreSQL process on the machine (backends and the WAL writer alike)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            try:
                total += _used(process.cpu_times())
            except psutil.Error:
                pass
    return total


@dataclass(frozen=True)
class CpuSample:
    at: float
    server: float
    agents: float   # their own processes
    tasks: float    # what the agents reaped (the task processes)
    database: float
    bench: float    # this process: the adding and polling clients
    idle: float     # the machine's idle CPU seconds, all cores


def sample(server_pid: int, with_database: bool) -> CpuSample:
    import psutil  # (the bench's extra; the arithmetic below needs none)

    server = psutil.Process(server_pid)
    agents = tasks = 0.0
    for agent in server.children(recursive=False):
        try:
            times = agent.cpu_times()
        except psutil.Error:
            continue
        agents += _used(times)
        tasks += times.children_user + times.children_system
    return CpuSample(time.monotonic(), _used(server.cpu_times()), agents, tasks,
                     _database() if with_database else 0.0, _used(psutil.Process().cpu_times()),
                     psutil.cpu_times().idle)


@dataclass(frozen=True)
class CpuPerTask:
    """Milliseconds of CPU a task, each part, over ``tasks`` tasks; ``idle``: the machine's idle share."""

    tasks: float
    agents: float
    server: float
    database: float
    bench: float
    idle: float

    @property
    def besides_tasks(self) -> float:
        """openbatch's own: agents, server and database."""
        return self.agents + self.server + self.database

    def budget(self, rate: float) -> float:
        """Milliseconds a task that openbatch may take at ``rate`` tasks/s with every core busy, beside
        the tasks' own and the bench clients'."""
        return 1000.0 * CORES / rate - self.tasks - self.bench

    def text(self, database_name: str) -> str:
        parts = [f"tasks' own {self.tasks:.2f}", f"agents {self.agents:.2f}", f"server {self.server:.2f}"]
        if self.database:
            parts.append(f"{database_name} {self.database:.2f}")
        parts.append(f"bench clients {self.bench:.2f}")
        return f"in ms: {', '.join(parts)}; machine idle {100 * self.idle:.0f}%"


def per_task(before: CpuSample, after: CpuSample, tasks: int) -> CpuPerTask | None:
    if tasks <= 0 or after.at <= before.at:
        return None
    ms = 1000.0 / tasks
    idle = (after.idle - before.idle) / ((after.at - before.at) * CORES)
    return CpuPerTask((after.tasks - before.tasks) * ms, (after.agents - before.agents) * ms,
                      (after.server - before.server) * ms, (after.database - before.database) * ms,
                      (after.bench - before.bench) * ms, max(0.0, min(1.0, idle)))
