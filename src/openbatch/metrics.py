"""The server's own Prometheus metrics: what this process did (counters, histograms).

What the store holds (tasks, nodes, jobs and pools by state) is read at scrape time instead
(api/ops.py), so every server of a database reports the same gauges, and each its own counters.
No label holds an id that grows without bound (task, job or node ids); pools and accounts do.
"""

from __future__ import annotations

import gc
import time
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
SCHEDULER_RESERVED = Counter("openbatch_scheduler_reserved_tasks", "Tasks reserved for nodes (prefetch: their agents "
                             "start them as slots free)", registry=REGISTRY)
RESERVATIONS_CANCELLED = Counter("openbatch_reservations_cancelled", "Task reservations cancelled before their run "
                                 "started on the node", registry=REGISTRY)
AUTOSCALE_EVALUATIONS = Counter("openbatch_autoscale_evaluations", "Autoscale formula evaluations, by outcome "
                                "(ok, or error: the pool's autoScaleRun holds the error)", ["result"],
                                registry=REGISTRY)

def _cumulative(bounds: tuple[float, ...], per_bucket: list[int]) -> list[tuple[str, int]]:
    """Histogram buckets as Prometheus wants them: (upper bound, answers at or below it), +Inf last."""
    cumulative, buckets = 0, []
    for bound, number in zip([*map(str, bounds), "+Inf"], list(per_bucket)):
        cumulative += number
        buckets.append((bound, cumulative))
    return buckets


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
            latency.add_metric([operation], _cumulative(self.buckets, per_bucket), total)
        yield requests
        yield latency


REQUESTS = RequestStats()
REGISTRY.register(REQUESTS)
request_answered = REQUESTS.answered

_GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class GcPauses(Collector):
    """How long the garbage collector held this process, by generation (gc.callbacks): a full collection
    stops every thread, so its pauses show in request latency."""

    def __init__(self) -> None:
        self.began = 0.0
        #: generation -> [collections per bucket (the last: above every bound), sum of seconds]
        self.pauses: dict[int, list] = {}

    def install(self) -> None:
        if self.observe not in gc.callbacks:
            gc.callbacks.append(self.observe)

    def observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        seconds = time.perf_counter() - self.began
        pauses = self.pauses.get(info["generation"])
        if pauses is None:
            pauses = self.pauses[info["generation"]] = [[0] * (len(_GC_BUCKETS) + 1), 0.0]
        pauses[0][bisect_left(_GC_BUCKETS, seconds)] += 1
        pauses[1] += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily("openbatch_gc_pause_seconds", "Time each garbage collection held the "
                                       "process, by generation", labels=["generation"])
        for generation, (per_bucket, total) in sorted(self.pauses.items()):
            family.add_metric([str(generation)], _cumulative(_GC_BUCKETS, per_bucket), total)
        yield family


GC_PAUSES = GcPauses()
REGISTRY.register(GC_PAUSES)


def tasks_changed(transitions: Mapping[tuple[str, str], int], waits: list[float], runtimes: list[float]) -> None:
    """Task state changes of one committed transaction: how many of each (old, new) state, how long the
    tasks that started had waited, how long those that completed had run."""
    for (old, new), number in transitions.items():
        TASK_TRANSITIONS.labels(old, new).inc(number)
    for seconds in waits:
        TASK_WAIT.observe(seconds)
    for seconds in runtimes:
        TASK_RUNTIME.observe(seconds)
