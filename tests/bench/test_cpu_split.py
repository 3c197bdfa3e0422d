"""bench/cpu_split.py: figure 1's CPU a task, per part, and the budget it is held to."""

from __future__ import annotations

import pytest

from bench.cpu_split import CORES, CpuSample, per_task


def _sample(at: float, **parts: float) -> CpuSample:
    values = {"server": 0.0, "agents": 0.0, "tasks": 0.0, "database": 0.0, "bench": 0.0, "idle": 0.0}
    values.update(parts)
    return CpuSample(at=at, **values)


def test_each_part_in_milliseconds_a_task_over_the_run_only() -> None:
    before = _sample(10.0, server=5.0, agents=1.0, tasks=2.0, database=3.0, bench=0.5, idle=100.0)
    after = _sample(20.0, server=9.0, agents=5.0, tasks=9.0, database=5.0, bench=1.0, idle=100.0 + 2.0 * CORES)
    split = per_task(before, after, 10_000)
    assert split is not None
    assert (split.server, split.agents, split.tasks, split.database, split.bench) == pytest.approx(
        (0.4, 0.4, 0.7, 0.2, 0.05))
    assert split.besides_tasks == pytest.approx(1.0)
    assert split.idle == pytest.approx(0.2)   # 2 s of each core's 10 s
    assert "PostgreSQL 0.20" in split.text("PostgreSQL") and "machine idle 20%" in split.text("PostgreSQL")


def test_the_budget_is_what_busy_cores_leave_beside_the_tasks_and_the_clients() -> None:
    split = per_task(_sample(0.0), _sample(1.0, tasks=0.7, bench=0.05), 1_000)
    assert split is not None
    rate = 1_400.0
    assert split.budget(rate) == pytest.approx(1000.0 * CORES / rate - 0.7 - 0.05)


def test_no_split_without_tasks_or_time() -> None:
    assert per_task(_sample(1.0), _sample(2.0), 0) is None
    assert per_task(_sample(1.0), _sample(1.0), 10) is None


def test_no_database_part_on_sqlite() -> None:
    split = per_task(_sample(0.0), _sample(1.0, server=1.0), 1_000)
    assert split is not None and "PostgreSQL" not in split.text("PostgreSQL")
