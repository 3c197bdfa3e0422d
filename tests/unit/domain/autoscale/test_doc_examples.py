"""Every formula of "Create a formula to automatically scale compute nodes in a Batch pool"
(learn.microsoft.com/azure/batch/batch-automatic-scaling), and real autoScaleRun results,
evaluated to the documented outcome."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.domain.autoscale.support import NOW, constant, error, run, series, value

PENDING_TASKS = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;
"""


@pytest.mark.parametrize(("samples", "target"), [
    ([], 1),  # a new pool: fewer than 70 % of the samples, start with one VM
    (constant(4, 3), 1),  # 50 %
    (constant(4, 6), 4),  # the average of the last 180 seconds
    (series([1, 2, 3, 4, 5, 6, 7, 9]), 5),  # avg(3..7, 9) = 5.5, rounded down
    (constant(80, 6), 25),  # never more than 25 VMs
])
def test_pending_tasks(samples: list, target: int) -> None:
    evaluation = run(PENDING_TASKS, metrics={"$PendingTasks": samples})
    assert evaluation.error is None
    assert (evaluation.target_dedicated, evaluation.deallocation_option) == (target, "taskcompletion")


PREEMPTED = """maxNumberofVMs = 25;
$TargetDedicatedNodes = min(maxNumberofVMs, $PreemptedNodeCount.GetSample(180 * TimeInterval_Second));
$TargetLowPriorityNodes = min(maxNumberofVMs , maxNumberofVMs - $TargetDedicatedNodes);
$NodeDeallocationOption = taskcompletion;
"""


def test_preempted_nodes() -> None:
    fresh = run(PREEMPTED, metrics={"$PreemptedNodeCount": constant(0, 6)})
    assert (fresh.target_dedicated, fresh.target_low_priority) == (0, 25)
    preempted = run(PREEMPTED, metrics={"$PreemptedNodeCount": constant(3, 6)})
    assert (preempted.target_dedicated, preempted.target_low_priority) == (3, 22)
    assert preempted.results() == ("$TargetDedicatedNodes=3;$TargetLowPriorityNodes=22;"
                                   "$NodeDeallocationOption=taskcompletion;maxNumberofVMs=25")


CPU = """$totalDedicatedNodes =
    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?
    ($CurrentDedicatedNodes * 1.1) : $CurrentDedicatedNodes;
$totalDedicatedNodes =
    (avg($CPUPercent.GetSample(TimeInterval_Minute * 60)) < 0.2) ?
    ($CurrentDedicatedNodes * 0.9) : $totalDedicatedNodes;
$TargetDedicatedNodes = min(400, $totalDedicatedNodes)
"""


@pytest.mark.parametrize(("cpu", "current", "target", "shown"), [
    (0.9, 10, 11, "11"),  # busy for 10 minutes: 110 %
    (0.5, 10, 10, "10"),  # neither
    (0.1, 10, 9, "9"),  # idle for an hour: 90 %
    (0.9, 380, 400, "400"),  # at most 400
])
def test_cpu_formula(cpu: float, current: int, target: int, shown: str) -> None:
    evaluation = run(CPU, metrics={"$CPUPercent": constant(cpu, 120)}, scalars={"$CurrentDedicatedNodes": current})
    assert evaluation.error is None
    assert evaluation.target_dedicated == target
    assert evaluation.variables[0] == ("$TargetDedicatedNodes", shown)


def test_cpu_statements_one_by_one() -> None:
    assert run("$TargetDedicatedNodes = min(400, 500)").target_dedicated == 400
    assert value("$CPUPercent.GetSample(TimeInterval_Minute * 5)",
                 metrics={"$CPUPercent": series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])}) == "[2,3,4,5,6,7,8,9,10,11]"


MONDAY = "$TargetDedicatedNodes = (time().weekday == 1 ? 5:1);"


def test_monday_formula() -> None:
    assert run(MONDAY).target_dedicated == 5
    assert run(MONDAY, now=NOW + timedelta(days=1)).target_dedicated == 1
    assert run(MONDAY, now=NOW + timedelta(days=6)).target_dedicated == 1  # Sunday


TIME_BASED = """$curTime = time();
$workHours = $curTime.hour >= 8 && $curTime.hour < 18;
$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
$isWorkingWeekdayHour = $workHours && $isWeekday;
$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;
$NodeDeallocationOption = taskcompletion;
"""


def test_time_based_adjustment() -> None:
    assert run(TIME_BASED).target_dedicated == 20  # Monday 10:30
    assert run(TIME_BASED, now=NOW + timedelta(hours=8)).target_dedicated == 10  # 18:30
    assert run(TIME_BASED, now=NOW + timedelta(days=5)).target_dedicated == 10  # Saturday
    mdt = TIME_BASED.replace("$curTime = time();", "$curTime = time() + (-6 * TimeInterval_Hour);")
    assert run(mdt).target_dedicated == 10  # 04:30 in Mountain Daylight Time
    assert run(mdt, now=NOW + timedelta(hours=6)).target_dedicated == 20


def test_documented_results_of_the_evaluate_example() -> None:
    """The docs' "AutoScaleRun.Results" output, now with the low-priority target Batch also lists."""
    formula = TIME_BASED.replace("$NodeDeallocationOption = taskcompletion;\n", "")
    evaluation = run(formula, now=datetime(2016, 10, 13, 19, 18, 47, 805_000, tzinfo=UTC))
    assert evaluation.results() == (
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0")


def test_python_sdk_example_with_the_alias() -> None:
    formula = """$curTime = time();
             $workHours = $curTime.hour >= 8 && $curTime.hour < 18;
             $isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
             $isWorkingWeekdayHour = $workHours && $isWeekday;
             $TargetDedicated = $isWorkingWeekdayHour ? 20:10;"""
    assert run(formula).target_dedicated == 20
    assert run(formula, now=NOW - timedelta(hours=3)).target_dedicated == 10


TASK_BASED = """// Get pending tasks for the past 15 minutes.
$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point,
// otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0,$PendingTasks.GetSample(1)) : max( $PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise
// half of current dedicated.
$targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicatedNodes/2);
// The pool size is capped at 20, if target VM value is more than that, set it
// to 20. This value should be adjusted according to your use case.
$TargetDedicatedNodes = max(0, min($targetVMs, 20));
// Set node deallocation mode - let running tasks finish before removing a node
$NodeDeallocationOption = taskcompletion;
"""


@pytest.mark.parametrize(("samples", "current", "target"), [
    ([], 8, 4),  # no data, no tasks: half of the current target
    (series([7]), 8, 7),  # few samples: the last one
    (constant(12, 30), 8, 12),
    (series([30] * 20 + [2] * 10), 8, 20),  # the average (21.3) wins over the last sample, capped at 20
])
def test_task_based_adjustment(samples: list, current: int, target: int) -> None:
    evaluation = run(TASK_BASED, metrics={"$PendingTasks": samples}, dedicated=current)
    assert evaluation.error is None
    assert (evaluation.target_dedicated, evaluation.deallocation_option) == (target, "taskcompletion")


PARALLEL = """// Determine whether 70 percent of the samples have been recorded in the past
// 15 minutes; if not, use last sample
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// Set the number of nodes to add to one-fourth the number of active tasks (the
// MaxTasksPerComputeNode property on this pool is set to 4, adjust this number
// for your use case)
$cores = $TargetDedicatedNodes * 4;
$extraVMs = (($tasks - $cores) + 3) / 4;
$targetVMs = ($TargetDedicatedNodes + $extraVMs);
// Attempt to grow the number of compute nodes to match the number of active
// tasks, with a maximum of 3
$TargetDedicatedNodes = max(0,min($targetVMs,3));
// Keep the nodes active until the tasks finish
$NodeDeallocationOption = taskcompletion;
"""


def test_accounting_for_parallel_tasks() -> None:
    assert run(PARALLEL, metrics={"$ActiveTasks": constant(9, 30)}, dedicated=1).target_dedicated == 3
    idle = run(PARALLEL, metrics={"$ActiveTasks": constant(0, 30)}, dedicated=2)
    assert idle.target_dedicated == 0
    assert dict(idle.variables)["$extraVMs"] == "-1.25"


INITIAL_SIZE = """
    $TargetDedicatedNodes = {1};
    lifespan         = time() - time("{0}");
    span             = TimeInterval_Minute * 60;
    startup          = TimeInterval_Minute * 10;
    ratio            = 50;

    $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : {1});
    """


def test_setting_an_initial_pool_size() -> None:
    created = (NOW - timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")  # C#'s ToString("r")
    young = INITIAL_SIZE.replace("{0}", created).replace("{1}", "4")
    assert run(young).target_dedicated == 4
    created = (NOW - timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    old = INITIAL_SIZE.replace("{0}", created).replace("{1}", "4")
    idle = {"$RunningTasks": constant(0, 120), "$ActiveTasks": constant(0, 120)}
    assert run(old, metrics=idle).target_dedicated == 0
    busy = {"$RunningTasks": constant(0, 120), "$ActiveTasks": constant(2, 120)}
    assert run(old, metrics=busy).target_dedicated == 4
    code, message = error(old, metrics={"$RunningTasks": constant(0, 30), "$ActiveTasks": constant(0, 120)})
    assert code == "InsufficientSampleData"
    assert message == "Line 8, Col 79: Insufficient data from data set: $RunningTasks wanted 50%, received 25%"


def test_get_sample_ranges_example() -> None:
    metrics = {"$RunningTasks": constant(1, 20)}
    evaluation = run("$runningTasksSample = $RunningTasks.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute);",
                     metrics=metrics)
    assert evaluation.results().endswith(";$runningTasksSample=[1,1,1,1,1,1,1,1,1,1]")
    assert value("$RunningTasks.GetSample(60 * TimeInterval_Second, 120 * TimeInterval_Second, 75)",
                 metrics=metrics) == "[1,1]"


def test_evaluate_placeholders() -> None:
    assert run("$TargetDedicatedNodes = 0").target_dedicated == 0
    assert run("$TargetDedicatedNodes = $CurrentDedicatedNodes;",
               scalars={"$CurrentDedicatedNodes": 3}).target_dedicated == 3


def test_real_run_results_2025() -> None:
    """A pool's autoScaleRun.results as Batch reported it (public deployment notes, 2025)."""
    formula = """// Get pending tasks for the past 15 minutes.
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point, otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0, $ActiveTasks.GetSample(1)) : 
max( $ActiveTasks.GetSample(1), avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise half of current dedicated.
$targetVMs = $tasks > 0 ? $tasks : max(0, $TargetDedicatedNodes / 2);
// The pool size is capped at 20, if target VM value is more than that, set it to 20. This value should be adjusted according to your use case.
cappedPoolSize = 3;
$TargetDedicatedNodes = max(1, min($targetVMs, cappedPoolSize));
// Set node deallocation mode - keep nodes active only until tasks finish
$NodeDeallocationOption = taskcompletion;"""
    evaluation = run(formula, metrics={"$ActiveTasks": constant(0, 29)}, dedicated=1)
    assert evaluation.results() == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;"
        "$samples=96.6667;$targetVMs=0.5;$tasks=0;cappedPoolSize=3")


def test_real_run_results_2020() -> None:
    formula = PENDING_TASKS.replace("maxNumberofVMs = 25", "maxNumberofVMs = 2").replace(
        "$NodeDeallocationOption = taskcompletion;\n", "")
    evaluation = run(formula, metrics={"$PendingTasks": constant(0, 6)})
    assert evaluation.results() == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "maxNumberofVMs=2;pendingTaskSamplePercent=100;pendingTaskSamples=0;startingNumberOfVMs=1")


def test_powershell_example() -> None:
    formula = ("totalNodes=($CPUPercent.GetSamplePercent(TimeInterval_Minute*0,TimeInterval_Minute*10)<0.7?5:"
               "(min($CPUPercent.GetSample(TimeInterval_Minute*0, TimeInterval_Minute*10))>0.8?"
               "($CurrentDedicated*1.1):$CurrentDedicated));$TargetDedicated=min(100,totalNodes);")
    evaluation = run(formula)
    assert evaluation.results() == (
        "$TargetDedicatedNodes=5;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;totalNodes=5")


def test_insufficient_data_position_matches_a_reported_error() -> None:
    """batch-shipyard issue 138: 'Line 9, Col 43: Insufficient data from data set: $PendingTasks wanted 70%,
    received 0%' for a formula whose ninth line reads the samples with a 70 % requirement."""
    lines = ["maxTasksPerNode = 1", "minTargetDedicated = 1", "minTargetLowPriority = 0",
             "maxTargetDedicated = 4", "maxTargetLowPriority = 0", "sli = TimeInterval_Second * 300",
             "samplepercent = $PendingTasks.GetSamplePercent(sli)", "lastsample = val($PendingTasks.GetSample(1), 0)",
             "samplevecavg = avg($PendingTasks.GetSample(sli, 70))", "$TargetDedicatedNodes = samplevecavg"]
    code, message = error(";\n".join(lines) + ";", metrics={"$PendingTasks": series([0], end=NOW - timedelta(hours=1))})
    assert (code, message) == (
        "InsufficientSampleData", "Line 9, Col 43: Insufficient data from data set: $PendingTasks wanted 70%, received 0%")
