"""Request counts and latencies kept in plain dicts, exposed as Prometheus counter and histogram families."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from openbatch.metrics import GcPauses, RequestStats


def test_requests_are_counted_by_operation_and_status_and_timed_in_cumulative_buckets() -> None:
    stats = RequestStats(buckets=(0.001, 0.01, 0.1))
    registry = CollectorRegistry()
    registry.register(stats)
    for seconds in (0.0005, 0.001, 0.05, 3.0):
        stats.answered("Job_Get", 200, seconds)
    stats.answered("Job_Get", 404, 0.002)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("openbatch_api_requests_total", (("operation", "Job_Get"), ("status", "200")))] == 4
    assert samples[("openbatch_api_requests_total", (("operation", "Job_Get"), ("status", "404")))] == 1
    bucket = lambda le: samples[("openbatch_api_request_duration_seconds_bucket", (("le", le), ("operation", "Job_Get")))]  # noqa: E731
    # a value equal to a bound counts in that bound's bucket (le); buckets are cumulative
    assert [bucket("0.001"), bucket("0.01"), bucket("0.1"), bucket("+Inf")] == [2, 3, 4, 5]
    assert samples[("openbatch_api_request_duration_seconds_count", (("operation", "Job_Get"),))] == 5
    assert abs(samples[("openbatch_api_request_duration_seconds_sum", (("operation", "Job_Get"),))] - 3.0535) < 1e-9


def test_garbage_collections_are_timed_by_generation() -> None:
    pauses = GcPauses()
    registry = CollectorRegistry()
    registry.register(pauses)
    pauses.install()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        gc.callbacks.remove(pauses.observe)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("openbatch_gc_pause_seconds_count", (("generation", "2"),))] >= 1
    assert samples[("openbatch_gc_pause_seconds_count", (("generation", "0"),))] >= 1
    assert samples[("openbatch_gc_pause_seconds_sum", (("generation", "2"),))] > 0
