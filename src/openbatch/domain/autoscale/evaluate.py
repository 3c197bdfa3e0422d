"""Evaluating a parsed formula against the pool's state (docs, "Variables", "Obtain sample data").

Statements run in order; ``stop()`` ends the run with the values set so far. An
error ends it too and is reported, never raised: the targets are then None (no
change is made to the pool) and ``error`` holds the ``autoScaleRun.error``.
Targets left unset keep the pool's current targets; $NodeDeallocationOption
defaults to ``requeue``. A fractional target is rounded down and a negative one
is 0 (Batch targets are whole, non-negative node counts).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import functions, operators, samples
from . import nodes as n
from .errors import SUMMARIES, EvalFailure, Fault, Stop, where
from .names import DEALLOCATION, DEALLOCATION_OPTIONS, DEDICATED, LOW_PRIORITY, SYSTEM, Kind
from .parser import Formula
from .samples import Sample, SampleSet
from .values import (
    Interval,
    Timestamp,
    Value,
    Vec,
    flatten,
    format_value,
    require_double,
    truth,
    type_name,
    utc,
)

#: The largest node target the evaluator reports (the quota checks of the server apply afterwards).
MAX_TARGET = 2**31 - 1


@dataclass(frozen=True)
class Inputs:
    """What a formula can see: the clock, the recorded samples and the pool's current values."""

    now: datetime  # tz-aware UTC
    sample_interval: timedelta  # how often the server records samples
    history_begin: datetime  # oldest time samples could exist from
    metrics: Mapping[str, Sequence[Sample]]  # "$CPUPercent" -> samples, newest last
    scalars: Mapping[str, float]  # "$CurrentDedicatedNodes", "$TaskSlotsPerNode", ...
    current_dedicated_target: int  # what an unset $TargetDedicatedNodes stays at
    current_low_priority_target: int
    rng: random.Random | None = None  # for rand(); seedable in tests


@dataclass(frozen=True)
class EvaluationError:
    """An ``autoScaleRun.error``: e.g. ``InsufficientSampleData`` with a ``Message`` value."""

    code: str
    message: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation (an ``autoScaleRun``)."""

    target_dedicated: int | None
    target_low_priority: int | None
    deallocation_option: str | None
    variables: tuple[tuple[str, str], ...]  # in autoScaleRun.results order, values formatted
    error: EvaluationError | None

    def results(self) -> str:
        """``autoScaleRun.results``: ``$TargetDedicatedNodes=2;...;$x=3``."""
        return ";".join(f"{name}={value}" for name, value in self.variables)


@dataclass
class _Target:
    full: float | None = None  # set through the full name
    alias: float | None = None  # set through $TargetDedicated / $TargetLowPriority
    where: n.Node | None = None  # the assignment that decides the value

    def value(self, alias_first: bool = False) -> float | None:
        first, second = (self.alias, self.full) if alias_first else (self.full, self.alias)
        return first if first is not None else second


@dataclass
class _State:
    inputs: Inputs
    now: Timestamp
    user: dict[str, Value] = field(default_factory=dict)
    targets: dict[str, _Target] = field(default_factory=lambda: {DEDICATED: _Target(), LOW_PRIORITY: _Target()})
    deallocation: str | None = None
    sample_sets: dict[str, SampleSet] = field(default_factory=dict)

    def default_target(self, name: str) -> float:
        i = self.inputs
        return float(i.current_dedicated_target if name == DEDICATED else i.current_low_priority_target)

    def sample_set(self, name: str) -> SampleSet:
        if name not in self.sample_sets:
            i = self.inputs
            self.sample_sets[name] = SampleSet.of(name, i.metrics.get(name, ()), i.now, i.sample_interval,
                                                  i.history_begin)
        return self.sample_sets[name]


def evaluate(formula: Formula, inputs: Inputs) -> Evaluation:
    """Run ``formula``; user mistakes come back in ``Evaluation.error``, never as exceptions."""
    state = _State(inputs, Timestamp(utc(inputs.now)))
    try:
        _run(formula, state)
        targets = {name: _whole(name, state) for name in (DEDICATED, LOW_PRIORITY)}
    except EvalFailure as failure:
        detail = where(failure.line, failure.column, failure.detail)
        error = EvaluationError(failure.code, SUMMARIES[failure.code], (("Message", detail),))
        return Evaluation(None, None, None, _variables(state), error)
    return Evaluation(targets[DEDICATED], targets[LOW_PRIORITY], state.deallocation or "requeue",
                      _variables(state), None)


def _run(formula: Formula, state: _State) -> None:
    """Execute the statements in order until the end or ``stop()``."""
    for statement in formula.statements:
        try:
            _execute(statement, state)
        except Stop:
            return  # stop(): the values set so far stand
        except RecursionError:
            raise EvalFailure(statement.line, statement.column, "the statement is nested too deeply") from None


def _whole(name: str, state: _State) -> int:
    """A target as a node count: rounded down, at least 0; NaN or infinity is an error."""
    target = state.targets[name]
    value = target.value()
    if value is None:
        return int(state.default_target(name))
    if math.isnan(value) or math.isinf(value):
        node = target.where or n.Node(1, 1)
        raise EvalFailure(node.line, node.column, f"{name} is not a finite number ({format_value(value)})")
    return min(MAX_TARGET, max(0, math.floor(value)))


def _variables(state: _State) -> tuple[tuple[str, str], ...]:
    """Targets and deallocation option first, then user variables in ordinal order."""
    listed: list[tuple[str, str]] = []
    for name in (DEDICATED, LOW_PRIORITY):
        value = state.targets[name].value()
        listed.append((name, format_value(state.default_target(name) if value is None else value)))
    listed.append((DEALLOCATION, state.deallocation or "requeue"))
    listed.extend((name, format_value(state.user[name])) for name in sorted(state.user))
    return tuple(listed)


def _execute(statement: n.Node, state: _State) -> None:
    if isinstance(statement, n.Expression):
        _eval(statement.value, state)
        return
    assert isinstance(statement, n.Assign)
    value = _eval(statement.value, state)
    if not statement.system:
        state.user[statement.name] = value
        return
    try:
        if statement.name == DEALLOCATION:
            option = value.lower() if isinstance(value, str) else None
            if option not in DEALLOCATION_OPTIONS:
                shown = value if isinstance(value, str) else f"a {type_name(value)}"
                raise Fault(f"{DEALLOCATION} must be one of {', '.join(DEALLOCATION_OPTIONS)}, not {shown}")
            state.deallocation = option
            return
        number = require_double(value, statement.name)
    except Fault as fault:
        raise EvalFailure(statement.line, statement.column, fault.detail, fault.code) from None
    target = state.targets[statement.name]
    if statement.alias:
        target.alias = number
        if target.full is None:
            target.where = statement
    else:
        target.full = number
        target.where = statement


def _eval(node: n.Node, state: _State) -> Value:
    try:
        return _dispatch(node, state)
    except Fault as fault:
        raise EvalFailure(node.line, node.column, fault.detail, fault.code) from None
    except (ArithmeticError, ValueError) as exc:  # a safety net: evaluation never raises
        raise EvalFailure(node.line, node.column, f"arithmetic error: {exc}") from None


def _dispatch(node: n.Node, state: _State) -> Value:
    if isinstance(node, n.Number):
        return node.value
    if isinstance(node, n.String):
        return node.value
    if isinstance(node, n.Interval):
        return Interval(node.ticks)
    if isinstance(node, n.Variable):
        if node.name in state.user:
            return state.user[node.name]
        if node.name in DEALLOCATION_OPTIONS:
            return node.name
        raise Fault(f"variable {node.name} is used before it is assigned")
    if isinstance(node, n.System):
        return _system(node, state)
    if isinstance(node, n.Vector):
        return Vec(tuple(flatten([_eval(item, state) for item in node.items], "a doubleVec literal")))
    if isinstance(node, n.Unary):
        return operators.unary(node.op, _eval(node.operand, state))
    if isinstance(node, n.Binary):
        left = _eval(node.left, state)
        if node.op in ("&&", "||"):
            if isinstance(left, float) and (left != 0.0) == (node.op == "||"):
                return 1.0 if node.op == "||" else 0.0  # short-circuit: the right side is not evaluated
            return operators.logical(node.op, left, _eval(node.right, state))
        return operators.binary(node.op, left, _eval(node.right, state))
    if isinstance(node, n.Conditional):
        chosen = node.then if truth(_eval(node.condition, state), "the condition of '?:'") else node.otherwise
        return _eval(chosen, state)
    if isinstance(node, n.Call):
        args = [_eval(arg, state) for arg in node.args]
        return functions.call(node.name, args, state.now, state.inputs.rng)
    if isinstance(node, n.Method):
        args = [_eval(arg, state) for arg in node.args]
        return samples.apply(state.sample_set(node.variable), node.name, args)
    if isinstance(node, n.Field):
        target = _eval(node.target, state)
        if not isinstance(target, Timestamp):
            raise Fault(f"'.{node.name}' is a member of a timestamp, not of a {type_name(target)}")
        return target.member(node.name)
    raise Fault(f"cannot evaluate {type(node).__name__}")  # unreachable


def _system(node: n.System, state: _State) -> Value:
    kind = SYSTEM[node.name]
    if kind is Kind.TARGET:
        value = state.targets[node.name].value(alias_first=node.written != node.name)
        return state.default_target(node.name) if value is None else value
    if kind is Kind.DEALLOCATION:
        return state.deallocation or "requeue"
    if kind is Kind.METRIC:
        raise Fault(f"{node.written} is a set of samples: use {node.written}.GetSample(...) to read its values")
    scalars = state.inputs.scalars
    if node.name in scalars:
        return float(scalars[node.name])
    recorded = state.sample_set(node.name).samples
    if recorded:
        return recorded[-1].value
    return 1.0 if node.name == "$TaskSlotsPerNode" else 0.0
