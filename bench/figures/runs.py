"""What figures 1, 7 and 8 share: N tasks added by one client back to back while a second polls Get Task
Counts (every 50 ms) until all N completed, within a time budget."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..measure import Deadline
from ..suite import Suite


@dataclass
class JobRun:
    completed: int
    added: int
    elapsed: float
    budget: float
    failures: list[str]


def run_job(suite: Suite, server, job_id: str, bodies: list[bytes], n: int, budget: float,  # type: ignore[no-untyped-def]
            description: str) -> JobRun:
    """Add ``bodies`` (AddTaskCollection) to ``job_id`` (which exists) and time it until ``n`` completed."""
    with server.client() as adder, server.client() as poller:
        failures: list[str] = []
        added = [0]

        def add_all() -> None:
            try:
                for body in bodies:
                    added[0] += adder.add_collection(job_id, body)
            except Exception as exc:  # noqa: BLE001 - reported by the figure
                failures.append(str(exc))

        deadline = Deadline(budget)
        completed = 0
        with suite.step(description, total=n) as step:
            start = time.perf_counter()
            thread = threading.Thread(target=add_all, name="bench-adder", daemon=True)
            thread.start()
            while not deadline.passed() and not failures:
                completed = poller.task_counts(job_id)["completed"]
                step.update(completed)
                if completed >= n:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            thread.join(timeout=30)
    return JobRun(completed, added[0], elapsed, deadline.seconds, failures)
