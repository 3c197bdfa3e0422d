"""Shared inputs for the autoscale tests: a fixed clock and 30-second sample series."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from openbatch.domain.autoscale import Evaluation, Inputs, Sample, evaluate, parse

NOW = datetime(2024, 3, 4, 10, 30, 0, tzinfo=UTC)  # a Monday
EVERY = timedelta(seconds=30)


def series(values: list[float], *, end: datetime = NOW, every: timedelta = EVERY) -> list[Sample]:
    """Samples ``every`` apart, the last one at ``end`` (oldest first)."""
    return [Sample(end - every * (len(values) - 1 - i), float(v)) for i, v in enumerate(values)]


def constant(value: float, count: int, *, end: datetime = NOW) -> list[Sample]:
    return series([value] * count, end=end)


def inputs(*, now: datetime = NOW, metrics: dict[str, list[Sample]] | None = None,
           scalars: dict[str, float] | None = None, dedicated: int = 0, low_priority: int = 0,
           seed: int | None = 7, history_begin: datetime | None = None) -> Inputs:
    return Inputs(
        now=now, sample_interval=EVERY, history_begin=history_begin or now - timedelta(days=1),
        metrics=metrics or {}, scalars=scalars or {}, current_dedicated_target=dedicated,
        current_low_priority_target=low_priority, rng=None if seed is None else random.Random(seed))


def run(text: str, **kwargs: object) -> Evaluation:
    """Parse and evaluate ``text`` with :func:`inputs` built from ``kwargs``."""
    return evaluate(parse(text), inputs(**kwargs))  # type: ignore[arg-type]


def value(expression: str, **kwargs: object) -> str:
    """The formatted value of ``expression`` as autoScaleRun.results writes it."""
    evaluation = run(f"r = {expression};", **kwargs)
    assert evaluation.error is None, evaluation.error
    return dict(evaluation.variables)["r"]


def error(text: str, **kwargs: object) -> tuple[str, str]:
    """The (code, Message value) of a failed evaluation."""
    evaluation = run(text, **kwargs)
    assert evaluation.error is not None, evaluation.results()
    assert evaluation.target_dedicated is None and evaluation.target_low_priority is None
    return evaluation.error.code, dict(evaluation.error.values)["Message"]
