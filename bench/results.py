"""What a figure produces: rows of (metric, value, unit, target), and peer figures."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """``value op threshold`` must hold: op is ">=" or "<="."""

    op: str
    threshold: float
    #: Shown instead of "≥ threshold unit" when set (e.g. "exact").
    label: str = ""

    def met(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def text(self, unit: str) -> str:
        if self.label:
            return self.label
        sign = "≥" if self.op == ">=" else "≤"
        return f"{sign} {format_value(self.threshold)} {unit}".rstrip()


def at_least(threshold: float) -> Target:
    return Target(">=", threshold)


def at_most(threshold: float) -> Target:
    return Target("<=", threshold)


@dataclass
class Row:
    figure: str
    metric: str
    value: float | None
    unit: str
    target: Target | None = None
    client: str = ""
    note: str = ""
    #: Peer figures measured in the same run, by name: "1,424 tasks/s", "not installed", ...
    peers: dict[str, str] = field(default_factory=dict)
    #: The measurement did not finish in its time budget: the value covers what was done.
    partial: bool = False

    @property
    def passed(self) -> bool | None:
        return self.target.met(self.value) if self.target else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = ({"op": self.target.op, "threshold": self.target.threshold,
                           "text": self.target.text(self.unit)} if self.target else None)
        data["passed"] = self.passed
        if self.value is not None and math.isnan(self.value):
            data["value"] = None
        return data


@dataclass
class Peer:
    """One peer system's throughput on the same ``/bin/true`` workload, or why there is none."""

    name: str
    tasks: int
    per_second: float | None
    status: str  # "measured", "not installed", "skipped (--peers)", "failed: ..."
    how: str = ""

    def text(self) -> str:
        if self.per_second is None:
            return self.status
        return f"{format_value(self.per_second)} tasks/s"


def error_row(figure: str, error: BaseException) -> Row:
    """A figure that could not be measured at all: no value, and why."""
    text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    return Row(figure, "not measured", None, "", note=text)


def format_value(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"
