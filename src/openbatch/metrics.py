"""The server's own Prometheus metrics: what this process did (counters, histograms).

What the store holds (tasks, nodes, jobs and pools by state) is read at scrape time instead
(api/ops.py), so every server of a database reports the same gauges, and each its own counters.
No label holds an id that grows without bound (task, job or node ids); pools and accounts do.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

disable_created_metrics()   # (a *_created sample beside every counter: nothing here reads them)
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LONG = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

TASK_TRANSITIONS = Counter("openbatch_task_transitions", "Task state changes committed, by old and new state "
                           "(added: from none; deleted: to none)", ["from_state", "to_state"], registry=REGISTRY)
TASK_WAIT = Histogram("openbatch_task_wait_seconds", "Time a task waited active (since it was added, or since it "
                      "went back to the queue) before a node took it (add -> running)", buckets=sorted(set(_FAST + _LONG)),
                      registry=REGISTRY)
TASK_RUNTIME = Histogram("openbatch_task_runtime_seconds", "Time from a task's start on a node to its completion",
                         buckets=_LONG, registry=REGISTRY)
SCHEDULER_ROUNDS = Counter("openbatch_scheduler_rounds", "Scheduling rounds run (this server leads while it "
                           "counts)", registry=REGISTRY)
SCHEDULER_PLACED = Counter("openbatch_scheduler_placed_tasks", "Tasks given to nodes (by scheduling rounds, and by the reports that freed their slots)",
                           registry=REGISTRY)
AUTOSCALE_EVALUATIONS = Counter("openbatch_autoscale_evaluations", "Autoscale formula evaluations, by outcome "
                                "(ok, or error: the pool's autoScaleRun holds the error)", ["result"],
                                registry=REGISTRY)

class RequestStats(Collector):
    """Requests answered, by operation and status, and their latency by operation: counted in plain dicts
    (about half a microsecond a request, where prometheus_client's locked counter and histogram took five)
    and turned into metric families when scraped. Requests are answered on the event loop only."""

    def __init__(self, buckets: tuple[float, ...] = _FAST) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, int], int] = {}
        #: operation -> [answers per bucket (the last: above every bound), sum of seconds]
        self.latency: dict[str, list] = {}

    def answered(self, operation: str, status: int, seconds: float) -> None:
        key = (operation, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        latency = self.latency.get(operation)
        if latency is None:
            latency = self.latency[operation] = [[0] * (len(self.buckets) + 1), 0.0]
        latency[0][bisect_left(self.buckets, seconds)] += 1
        latency[1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("openbatch_api_requests", "Batch API requests answered, by operation and "
                                       "HTTP status", labels=["operation", "status"])
        for (operation, status), number in sorted(self.counts.items()):
            requests.add_metric([operation, str(status)], number)
        latency = HistogramMetricFamily("openbatch_api_request_duration_seconds", "Time from a Batch API "
                                        "request's arrival to its answer, by operation", labels=["operation"])
        for operation, (per_bucket, total) in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, number in zip([*map(str, self.buckets), "+Inf"], per_bucket):
                cumulative += number
                buckets.append((bound, cumulative))
            latency.add_metric([operation], buckets, total)
        yield requests
        yield latency


REQUESTS = RequestStats()
REGISTRY.register(REQUESTS)
request_answered = REQUESTS.answered


def tasks_changed(transitions: Mapping[tuple[str, str], int], waits: list[float], runtimes: list[float]) -> None:
    """Task state changes of one committed transaction: how many of each (old, new) state, how long the
    tasks that started had waited, how long those that completed had run."""
    for (old, new), number in transitions.items():
        TASK_TRANSITIONS.labels(old, new).inc(number)
    for seconds in waits:
        TASK_WAIT.observe(seconds)
    for seconds in runtimes:
        TASK_RUNTIME.observe(seconds)
