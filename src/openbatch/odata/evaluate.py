"""Evaluate a bound ``$filter`` against an in-memory item (for lists not backed by SQL).

Semantics match ``openbatch.store.filters.compile_filter``: a comparison with a missing
(``None``) value is false, except ``ne`` which is true; ``not`` negates that two-valued result.
"""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable

from openbatch.odata.fields import (
    BoundAnd,
    BoundExpr,
    BoundNot,
    BoundOr,
    BoundStartsWith,
    FieldSpec,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def matches(expr: BoundExpr, get: Callable[[str], Any]) -> bool:
    """Whether the item whose property values ``get(path)`` returns satisfies ``expr``."""
    if isinstance(expr, BoundAnd):
        return all(matches(o, get) for o in expr.operands)
    if isinstance(expr, BoundOr):
        return any(matches(o, get) for o in expr.operands)
    if isinstance(expr, BoundNot):
        return not matches(expr.operand, get)
    value = _normalize(get(expr.path), expr.spec)
    if isinstance(expr, BoundStartsWith):
        return isinstance(value, str) and value.startswith(expr.prefix)
    if value is None:
        return expr.op == "ne"
    return bool(_OPS[expr.op](value, expr.value))


def _normalize(value: Any, spec: FieldSpec) -> Any:
    """Bring an item's value to the form ``bind`` gives literals (lowercase, aware UTC)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str) and (spec.kind == "enum" or spec.case_insensitive):
        return value.lower()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
