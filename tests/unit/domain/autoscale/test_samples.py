"""Sample methods: GetSample by count, by interval and by time frame, the sample percentage
and its documented failure, GetSamplePercent, GetSamplePeriod, Count, HistoryBeginTime."""

from datetime import timedelta

import pytest

from openbatch.domain.autoscale import INSUFFICIENT_SAMPLE_DATA, Sample
from openbatch.domain.autoscale.errors import EVALUATION_ERROR
from tests.unit.domain.autoscale.support import NOW, constant, error, run, series, value

TEN_MINUTES = constant(50.0, 20)  # every sample of the last 10 minutes
MISSING_LAST_MINUTE = constant(50.0, 18, end=NOW - timedelta(minutes=1))


def cpu(samples: list[Sample]) -> dict[str, list[Sample]]:
    return {"$CPUPercent": samples}


def test_get_sample_count_returns_the_most_recent() -> None:
    metrics = cpu(series([1, 2, 3, 4, 5]))
    assert value("$CPUPercent.GetSample(1)", metrics=metrics) == "[5]"
    assert value("$CPUPercent.GetSample(3)", metrics=metrics) == "[3,4,5]"
    assert value("$CPUPercent.GetSample(2.9)", metrics=metrics) == "[4,5]"
    assert value("$CPUPercent.GetSample(9)", metrics=metrics) == "[1,2,3,4,5]"
    assert value("$CPUPercent.GetSample(1)") == "[]"


def test_docs_ten_minutes_is_twenty_samples() -> None:
    assert value("len($CPUPercent.GetSample(TimeInterval_Minute * 10))", metrics=cpu(TEN_MINUTES)) == "20"
    assert value("len($CPUPercent.GetSample(TimeInterval_Minute * 10))", metrics=cpu(MISSING_LAST_MINUTE)) == "18"


def test_docs_sample_percentage_95_fails_80_succeeds() -> None:
    metrics = cpu(MISSING_LAST_MINUTE)
    code, message = error("x = $CPUPercent.GetSample(TimeInterval_Minute * 10, 95)", metrics=metrics)
    assert code == INSUFFICIENT_SAMPLE_DATA == "InsufficientSampleData"
    assert message == "Line 1, Col 26: Insufficient data from data set: $CPUPercent wanted 95%, received 90%"
    assert value("len($CPUPercent.GetSample(TimeInterval_Minute * 10, 80))", metrics=metrics) == "18"
    assert value("len($CPUPercent.GetSample(TimeInterval_Minute * 10, 90))", metrics=metrics) == "18"


def test_insufficient_sample_data_error_body() -> None:
    evaluation = run("a = 1;\n$x = $RunningTasks.GetSample(TimeInterval_Minute, 70)",
                     metrics={"$RunningTasks": constant(1, 1)})
    assert evaluation.error is not None
    assert evaluation.error.code == "InsufficientSampleData"
    assert evaluation.error.message == "Autoscale evaluation failed due to insufficient sample data"
    assert evaluation.error.values == (
        ("Message", "Line 2, Col 29: Insufficient data from data set: $RunningTasks wanted 70%, received 50%"),)
    assert (evaluation.target_dedicated, evaluation.target_low_priority, evaluation.deallocation_option) == (
        None, None, None)
    assert evaluation.results() == "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;" \
                                   "$NodeDeallocationOption=requeue;a=1"


def test_look_back_frame_between_two_intervals() -> None:
    metrics = {"$RunningTasks": series(list(range(20)))}  # 0 at -9:30 ... 19 at now
    frame = "$RunningTasks.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute)"
    assert value(frame, metrics=metrics) == "[8,9,10,11,12,13,14,15,16,17]"  # (now-6m, now-1m]
    reversed_frame = "$RunningTasks.GetSample(6 * TimeInterval_Minute, 1 * TimeInterval_Minute)"
    assert value(reversed_frame, metrics=metrics) == "[8,9,10,11,12,13,14,15,16,17]"
    assert value("$RunningTasks.GetSample(60 * TimeInterval_Second, 120 * TimeInterval_Second, 75)",
                 metrics=metrics) == "[16,17]"


def test_frame_by_timestamps_and_mixed() -> None:
    metrics = {"$ActiveTasks": series(list(range(20)))}
    start = "(TimeInterval_Minute * -2 + time())"
    assert value(f"$ActiveTasks.GetSample({start})", metrics=metrics) == "[16,17,18,19]"
    assert value(f"$ActiveTasks.GetSample({start}, time(), 100)", metrics=metrics) == "[16,17,18,19]"
    assert value(f"$ActiveTasks.GetSample({start}, TimeInterval_Minute)", metrics=metrics) == "[16,17]"
    assert value('$ActiveTasks.GetSample(time("2024-03-04T10:29:00Z"), time("2024-03-04T10:28:00Z"))',
                 metrics=metrics) == "[16,17]"


def test_get_sample_percent() -> None:
    metrics = {"$ActiveTasks": constant(3, 29)}
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15)", metrics=metrics) == "96.6667"
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Minute * 0, TimeInterval_Minute * 10)",
                 metrics=metrics) == "100"
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Hour)", metrics=metrics) == "24.1667"
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Hour)") == "0"
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Zero)") == "100"
    assert value("$ActiveTasks.GetSamplePercent(TimeInterval_Minute * -2 + time())", metrics=metrics) == "100"


def test_period_count_and_history_begin() -> None:
    samples = series([1, 2, 3]) + [Sample(NOW + timedelta(minutes=1), 9.0)]  # a future sample is not seen
    metrics = {"$DiskBytes": samples}
    assert value("$DiskBytes.GetSamplePeriod()", metrics=metrics) == "00:00:30"
    assert value("$DiskBytes.Count()", metrics=metrics) == "3"
    assert value("$DiskBytes.HistoryBeginTime()", metrics=metrics) == "2024-03-04T10:29:00.000Z"
    assert value("$DiskBytes.GetSample(1)", metrics=metrics) == "[3]"
    assert value("$DiskBytes.Count()") == "0"
    assert value("$DiskBytes.HistoryBeginTime()", history_begin=NOW - timedelta(hours=2)) == \
        "2024-03-04T08:30:00.000Z"


def test_unordered_samples_are_sorted() -> None:
    samples = list(reversed(series([1, 2, 3])))
    assert value("$NetworkInBytes.GetSample(2)", metrics={"$NetworkInBytes": samples}) == "[2,3]"


def test_every_metric_has_the_methods() -> None:
    names = ["$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
             "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
             "$SampleNodeCount", "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks",
             "$FailedTasks", "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$PreemptedNodeCount",
             "$UsableNodeCount", "$TaskSlotsPerNode"]
    formula = ";".join(f"v{i} = sum({name}.GetSample(1))" for i, name in enumerate(names))
    evaluation = run(formula, metrics={name: series([i]) for i, name in enumerate(names)})
    assert evaluation.error is None
    assert [v for k, v in evaluation.variables if k.startswith("v")] == [
        str(i) for i in sorted(range(len(names)), key=lambda i: f"v{i}")]


def test_metrics_must_be_read_through_their_methods() -> None:
    code, message = error("x = 1;\nx = $CPUPercent * 2", metrics=cpu(TEN_MINUTES))
    assert code == EVALUATION_ERROR
    assert message == ("Line 2, Col 5: $CPUPercent is a set of samples: "
                       "use $CPUPercent.GetSample(...) to read its values")
    assert error("x = max(0, $PendingTasks)")[1].startswith("Line 1, Col 12: $PendingTasks is a set of samples")


def test_counts_are_values_and_sample_sets() -> None:
    scalars = {"$CurrentDedicatedNodes": 4, "$PreemptedNodeCount": 2}
    metrics = {"$PreemptedNodeCount": series([0, 1, 2])}
    assert value("$CurrentDedicatedNodes * 1.1", scalars=scalars) == "4.4"
    assert value("$PreemptedNodeCount.GetSample(2)", scalars=scalars, metrics=metrics) == "[1,2]"
    assert value("$PreemptedNodeCount", metrics=metrics) == "2"  # no scalar: the latest sample
    assert value("$UsableNodeCount") == "0"
    assert value("$TaskSlotsPerNode") == "1"
    assert value("$TaskSlotsPerNode", scalars={"$TaskSlotsPerNode": 4}) == "4"
    assert value("$CurrentDedicated + $currentlowprioritynodes",
                 scalars={"$CurrentDedicatedNodes": 2, "$CurrentLowPriorityNodes": 3}) == "5"


SIGNATURES = ("GetSample() takes a count, or a start [and end] timestamp or timeinterval "
              "and an optional sample percentage")


@pytest.mark.parametrize(("call", "detail"), [
    ("GetSample(0)", "GetSample() needs a count of at least 1, not 0"),
    ("GetSample(-1 / 0)", "GetSample() needs a count of at least 1, not -inf"),
    ('GetSample("5")', f"{SIGNATURES}, not (string)"),
    ("GetSample(5, 50)", f"{SIGNATURES}, not (double, double)"),
    ("GetSample(TimeInterval_Hour, 50, TimeInterval_Hour)", f"{SIGNATURES}, not (timeinterval, double, timeinterval)"),
    ('GetSample(TimeInterval_Hour, "50")', "the sample percentage must be a double, not a string"),
    ("GetSample(TimeInterval_Hour, 101)", "the sample percentage must be between 0 and 100, not 101"),
    ("GetSamplePercent(5)", "GetSamplePercent() takes a timestamp or timeinterval start and an optional end"),
])
def test_bad_arguments(call: str, detail: str) -> None:
    code, message = error(f"x = $CPUPercent.{call}")
    assert code == EVALUATION_ERROR
    assert message == f"Line 1, Col {len('x = $CPUPercent.') + call.index('(') + 1}: {detail}"
