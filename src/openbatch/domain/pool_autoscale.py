"""Autoscale on a pool: checking its settings, the inputs its formula sees, and what a run changes.

The formula language is :mod:`openbatch.domain.autoscale`. Here: a formula is checked when it is
set (a syntax error is a 400 ``AutoScalingFormulaSyntaxError`` naming its line and column), the
evaluation interval is within the documented bounds (a server setting may lower the minimum for
local development), an evaluation becomes the pool's ``autoScaleRun`` and, when it succeeded,
its new targets. A sample is what the server records of a pool at a time: the tasks of its jobs
and its nodes (domain names of the formula's variables, e.g. ``$ActiveTasks``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from . import clock
from .autoscale import Evaluation, FormulaSyntaxError, Inputs, Sample, evaluate, parse
from .autoscale.parser import Formula
from .errors import BatchError, invalid_property
from .nodes import NodeState
from .validation import parse_duration

Json = dict[str, Any]

DEFAULT_INTERVAL = "PT15M"
#: Azure's least autoScaleEvaluationInterval (a server setting may lower it: ServiceContext.intervals).
MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(hours=168)

#: Task metrics recorded as counts at the sample's time; succeeded and failed tasks as how many
#: ended since the sample before (the job counters are totals: ``_total`` keys keep them).
TASK_METRICS = ("$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks", "$FailedTasks")
#: Node states a formula's $UsableNodeCount counts (the nodes that can run tasks).
USABLE = frozenset({NodeState.IDLE.value, NodeState.RUNNING.value})


def parsed(text: str | None, prop: str = "autoScaleFormula") -> Formula:
    """The formula, or the documented 400 (syntax errors say where)."""
    if not text:
        raise BatchError("MissingRequiredProperty", "A required property was not specified in the request body.",
                         [("PropertyName", prop)])
    try:
        return parse(text)
    except FormulaSyntaxError as error:
        raise BatchError(error.code, f"The autoscale formula is not valid: {error.message}",
                         [("PropertyName", prop), ("Line", str(error.line)), ("Column", str(error.column)),
                          ("Message", error.message)]) from None


def check_interval(value: str | None, minimum: timedelta, prop: str = "autoScaleEvaluationInterval") -> None:
    if value is None:
        return
    span = parse_duration(value, prop)
    if not minimum <= span <= MAX_INTERVAL:
        raise invalid_property(prop, value, f"The interval must be between {minimum} and {MAX_INTERVAL}.")


def interval_of(body: Json) -> timedelta:
    return parse_duration(body.get("autoScaleEvaluationInterval") or DEFAULT_INTERVAL, "autoScaleEvaluationInterval")


def node_scalars(pool: Json, nodes: Sequence[tuple[bool, str, int]]) -> dict[str, float]:
    """The formula's node variables from the pool's nodes: (dedicated, state, how many)."""
    dedicated = sum(n for is_dedicated, _, n in nodes if is_dedicated)
    low = sum(n for is_dedicated, _, n in nodes if not is_dedicated)
    return {
        "$CurrentDedicatedNodes": dedicated,
        "$CurrentLowPriorityNodes": low,
        "$PreemptedNodeCount": sum(n for _, state, n in nodes if state == NodeState.PREEMPTED.value),
        "$UsableNodeCount": sum(n for _, state, n in nodes if state in USABLE),
        "$SampleNodeCount": dedicated + low,
        "$TaskSlotsPerNode": int(pool.get("taskSlotsPerNode", 1)),
    }


#: Host usage the agents report (agent/usage.py) -> the formula's variable: averaged over the pool's agents.
USAGE_GAUGES = {"cpuPercent": "$CPUPercent", "memoryBytes": "$MemoryBytes", "diskBytes": "$DiskBytes"}
#: Running totals the agents report -> the variable: each agent's increase since the sample before, averaged.
USAGE_TOTALS = {"diskReadBytes": "$DiskReadBytes", "diskWriteBytes": "$DiskWriteBytes", "diskReadOps": "$DiskReadOps",
                "diskWriteOps": "$DiskWriteOps", "networkInBytes": "$NetworkInBytes",
                "networkOutBytes": "$NetworkOutBytes"}


def usage_values(usage: Mapping[str, Mapping[str, float]], previous: Mapping[str, Any] | None) -> Json:
    """The resource metrics of a sample from the usage each of the pool's agents last reported."""
    before = (previous or {}).get("agents", {})
    values: Json = {}
    for key, name in USAGE_GAUGES.items():
        seen = [float(u[key]) for u in usage.values() if key in u]
        if seen:
            values[name] = sum(seen) / len(seen)
    for key, name in USAGE_TOTALS.items():
        grown = [max(0.0, float(u[key]) - float(before[agent][key])) for agent, u in usage.items()
                 if key in u and key in before.get(agent, {})]
        if grown:
            values[name] = sum(grown) / len(grown)
    values["agents"] = {agent: {k: u[k] for k in USAGE_TOTALS if k in u} for agent, u in usage.items()}
    return values


def sample_values(tasks: Mapping[str, int], nodes: Mapping[str, float], previous: Mapping[str, Any] | None,
                  usage: Mapping[str, Mapping[str, float]] | None = None, period: timedelta = timedelta(0)) -> Json:
    """One recorded sample: ``tasks`` has the pool's jobs' totals (active, running, succeeded, failed);
    ``usage`` what each of its agents reported. $WallClockSeconds counts the seconds its running tasks
    had in the period (running tasks x period)."""
    before = previous or {}
    values: Json = {
        "$WallClockSeconds": tasks["running"] * period.total_seconds(),
        "$ActiveTasks": tasks["active"],
        "$RunningTasks": tasks["running"],
        "$PendingTasks": tasks["active"] + tasks["running"],
        "$SucceededTasks": max(0, tasks["succeeded"] - before.get("succeeded_total", tasks["succeeded"])),
        "$FailedTasks": max(0, tasks["failed"] - before.get("failed_total", tasks["failed"])),
        "succeeded_total": tasks["succeeded"],
        "failed_total": tasks["failed"],
    }
    values.update(nodes)
    values.update(usage_values(usage or {}, previous))
    return values


def inputs(pool: Json, now: datetime, period: timedelta, samples: Sequence[tuple[datetime, Json]],
           scalars: Mapping[str, float], rng: random.Random | None = None) -> Inputs:
    """What the pool's formula sees: its samples (oldest first) by variable, and its node variables now."""
    metrics: dict[str, list[Sample]] = {}
    for time, values in samples:
        for name, value in values.items():
            if name.startswith("$"):
                metrics.setdefault(name, []).append(Sample(time, float(value)))
    return Inputs(now=now, sample_interval=period, history_begin=clock.from_wire(pool["creationTime"]),
                  metrics=metrics, scalars=dict(scalars),
                  current_dedicated_target=int(pool.get("targetDedicatedNodes", 0)),
                  current_low_priority_target=int(pool.get("targetLowPriorityNodes", 0)), rng=rng)


def run(formula: Formula, pool_inputs: Inputs) -> tuple[Json, Evaluation]:
    """Evaluate: the ``autoScaleRun`` it makes, and the evaluation (its targets when it succeeded)."""
    evaluation = evaluate(formula, pool_inputs)
    autoscale_run: Json = {"timestamp": clock.to_wire(pool_inputs.now), "results": evaluation.results()}
    if evaluation.error is not None:
        autoscale_run["error"] = {"code": evaluation.error.code, "message": evaluation.error.message,
                                  "values": [{"name": k, "value": v} for k, v in evaluation.error.values]}
    return autoscale_run, evaluation


def enabled_body(body: Json, formula: str, interval: str | None) -> Json:
    """The pool with autoscale on: the formula, and the interval given (or kept, or the default)."""
    new = {**body, "enableAutoScale": True, "autoScaleFormula": formula}
    new["autoScaleEvaluationInterval"] = interval or body.get("autoScaleEvaluationInterval") or DEFAULT_INTERVAL
    return new


def disabled_body(body: Json) -> Json:
    """Autoscale off: the targets stay where the last evaluation left them."""
    new = {k: v for k, v in body.items() if k not in ("autoScaleFormula", "autoScaleEvaluationInterval")}
    new["enableAutoScale"] = False
    return new
