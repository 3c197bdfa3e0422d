"""Resource usage statistics ($expand=stats).

Counts the service knows exactly (succeeded/failed tasks) are real; usage this
server does not meter yet (CPU time, I/O) is reported as zero.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_ZERO_USAGE: Json = {
    "userCPUTime": "PT0S",
    "kernelCPUTime": "PT0S",
    "wallClockTime": "PT0S",
    "readIOps": 0,
    "writeIOps": 0,
    "readIOGiB": 0.0,
    "writeIOGiB": 0.0,
    "waitTime": "PT0S",
}


def task_stats(url: str, start: str, updated: str) -> Json:
    return {"url": url, "startTime": start, "lastUpdateTime": updated, **_ZERO_USAGE}


def job_stats(url: str, start: str, updated: str, succeeded: int, failed: int) -> Json:
    return {
        "url": url,
        "startTime": start,
        "lastUpdateTime": updated,
        **_ZERO_USAGE,
        "numSucceededTasks": succeeded,
        "numFailedTasks": failed,
        "numTaskRetries": 0,
    }


def pool_stats(url: str, start: str, updated: str) -> Json:
    return {"url": url, "startTime": start, "lastUpdateTime": updated}
