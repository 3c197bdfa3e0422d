"""Compile a bound OData ``$filter`` into a SQLAlchemy Core boolean expression.

Column contract (``columns`` maps canonical property paths to column expressions):

* datetime columns are ``DateTime`` holding naive UTC values;
* enum and case-insensitive string properties must map to an expression holding the
  lowercased value (a lowercased shadow column, or ``func.lower(col)``);
* string ordering is by code point, as in Python: on PostgreSQL range comparisons and
  ``startswith`` apply ``COLLATE "C"`` (index-friendly when the column itself is declared
  with collation "C"); SQLite's default BINARY collation already orders that way.

NULL semantics match ``openbatch.odata.evaluate.matches``: a comparison with NULL is false,
except ``ne`` which is true, and ``not`` treats an unknown operand as false.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import String, and_, false, func, not_, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from openbatch.odata.fields import (
    BoundAnd,
    BoundExpr,
    BoundNot,
    BoundOr,
    BoundStartsWith,
)

_MAX_CODE_POINT = 0x10FFFF


class _Ordinal(ColumnElement[Any]):
    """``expr`` compared by code point: ``(expr) COLLATE "C"`` on PostgreSQL, ``expr`` elsewhere."""

    __visit_name__ = "openbatch_ordinal"
    inherit_cache = True
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement)]

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        # A plain String, so bound values carry no COLLATE of their own (which would conflict).
        self.type = String()


@compiles(_Ordinal)
def _compile_ordinal(element: _Ordinal, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.expr, **kw)


@compiles(_Ordinal, "postgresql")
def _compile_ordinal_pg(element: _Ordinal, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.expr, **kw)}) COLLATE "C"'


def compile_filter(expr: BoundExpr, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the rows ``matches(expr, ...)`` would accept."""
    if isinstance(expr, BoundAnd):
        return and_(*(compile_filter(o, columns) for o in expr.operands))
    if isinstance(expr, BoundOr):
        return or_(*(compile_filter(o, columns) for o in expr.operands))
    if isinstance(expr, BoundNot):
        return not_(func.coalesce(compile_filter(expr.operand, columns), false()))
    column = _column(columns, expr.path)
    if isinstance(expr, BoundStartsWith):
        return _startswith(column, expr.prefix)
    value = expr.value
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    if expr.op == "eq":
        return column == value
    if expr.op == "ne":
        return or_(column != value, column.is_(None))
    if isinstance(value, str):
        column = _Ordinal(column)
    if expr.op == "gt":
        return column > value
    if expr.op == "ge":
        return column >= value
    if expr.op == "lt":
        return column < value
    return column <= value


def _column(columns: Mapping[str, ColumnElement[Any]], path: str) -> ColumnElement[Any]:
    try:
        return columns[path]
    except KeyError:
        raise LookupError(f"no column is mapped for the $filter property {path!r}") from None


def _startswith(column: ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
    """``column >= prefix AND column < upper`` (no LIKE, so no wildcard escaping)."""
    if not prefix:
        return column.is_not(None)
    ordinal = _Ordinal(column)
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return ordinal >= prefix
    return and_(ordinal >= prefix, ordinal < upper)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None if unbounded)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code <= _MAX_CODE_POINT:
            if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be encoded; skip past them
                code = 0xE000
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None
