"""Filterable properties per operation, and binding a parsed ``$filter`` against them.

``bind`` checks each property, operator and literal against a ``FieldSpec`` and returns a
bound AST whose values are already coerced: enum values and case-insensitive strings are
lowercased, DateTimes are aware UTC ``datetime``s. Aliased properties (``alias_of``) are
bound under their canonical path, so evaluators and SQL column maps only see canonical paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Literal, Mapping, NoReturn, Union

from openbatch.domain.errors import invalid_query
from openbatch.odata.filter import And, Comparison, Expr, LiteralValue, Or, StartsWith, parse


@dataclass(frozen=True)
class FieldSpec:
    kind: Literal["string", "enum", "int", "datetime", "bool"]
    ops: frozenset[str]  # subset of {"eq","ne","gt","ge","lt","le","startswith"}
    values: frozenset[str] = frozenset()  # allowed values for kind="enum" (lowercase)
    case_insensitive: bool = False  # string compared lowercased (the column holds the lowercased value)
    alias_of: str | None = None  # another spelling of this canonical property path


BoundValue = Union[str, int, bool, datetime]

#: Integer properties (exit codes) are int32 in the spec and in the store.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class BoundComparison:
    path: str  # canonical property path
    op: str  # eq ne gt ge lt le
    value: BoundValue
    spec: FieldSpec


@dataclass(frozen=True)
class BoundStartsWith:
    path: str
    prefix: str  # lowercased for enum and case-insensitive fields
    spec: FieldSpec


@dataclass(frozen=True)
class BoundAnd:
    operands: tuple[BoundExpr, ...]


@dataclass(frozen=True)
class BoundOr:
    operands: tuple[BoundExpr, ...]


@dataclass(frozen=True)
class BoundNot:
    operand: BoundExpr


BoundExpr = Union[BoundComparison, BoundStartsWith, BoundAnd, BoundOr, BoundNot]


def bind(ast: Expr, fields: Mapping[str, FieldSpec], text: str) -> BoundExpr:
    """Type-check ``ast`` against ``fields``; raise a 400 ``BatchError`` naming the problem."""

    def fail(reason: str) -> NoReturn:
        raise invalid_query("$filter", text, reason)

    def spec_for(path: str, op: str) -> FieldSpec:
        spec = fields.get(path)
        if spec is None:
            hint = next((name for name in fields if name.lower() == path.lower()), None)
            extra = f" (property names are case-sensitive; did you mean '{hint}'?)" if hint else ""
            fail(f"The property '{path}' is not supported in $filter for this operation{extra}")
        if op not in spec.ops:
            allowed = ", ".join(sorted(spec.ops)) or "none"
            fail(f"Operator '{op}' is not supported for property '{path}' (supported: {allowed})")
        return spec

    def go(node: Expr) -> BoundExpr:
        if isinstance(node, Comparison):
            spec = spec_for(node.path, node.op)
            return BoundComparison(spec.alias_of or node.path, node.op, coerce(node.path, spec, node.value), spec)
        if isinstance(node, StartsWith):
            spec = spec_for(node.path, "startswith")
            if spec.kind not in ("string", "enum"):
                fail(f"Operator 'startswith' is not supported for property '{node.path}'")
            lower = spec.kind == "enum" or spec.case_insensitive
            return BoundStartsWith(spec.alias_of or node.path, node.prefix.lower() if lower else node.prefix, spec)
        if isinstance(node, And):
            return BoundAnd(tuple(go(o) for o in node.operands))
        if isinstance(node, Or):
            return BoundOr(tuple(go(o) for o in node.operands))
        return BoundNot(go(node.operand))

    def coerce(path: str, spec: FieldSpec, lit: LiteralValue) -> BoundValue:
        value = lit.value
        if spec.kind == "enum" and lit.kind == "string":
            lowered = str(value).lower()
            if lowered in spec.values:
                return lowered
        elif spec.kind == "string" and lit.kind == "string":
            return str(value).lower() if spec.case_insensitive else str(value)
        elif spec.kind == "int" and lit.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            if INT32_MIN <= value <= INT32_MAX:
                return value
            fail(f"The value {lit.text} is out of range for property '{path}' (a 32-bit integer)")
        elif spec.kind == lit.kind and isinstance(value, (bool, datetime)):
            return value
        fail(f"The value {lit.text} is not valid for property '{path}'; expected {_expected(spec)}")

    if not fields:
        fail("$filter is not supported for this operation")
    return go(ast)


def parse_filter(text: str, fields: Mapping[str, FieldSpec]) -> BoundExpr:
    """Parse and bind in one step."""
    return bind(parse(text), fields, text)


def _expected(spec: FieldSpec) -> str:
    if spec.kind == "enum":
        return "one of " + ", ".join(f"'{v}'" for v in sorted(spec.values))
    return {
        "string": "a string in single quotes",
        "int": "an integer",
        "datetime": "a DateTime literal such as DateTime'2011-05-08T08:49:37Z'",
        "bool": "true or false",
    }[spec.kind]


# --- the catalogue -------------------------------------------------------------------------

_CMP = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_EQ = frozenset({"eq", "ne"})
_ID = FieldSpec("string", _CMP | {"startswith"}, case_insensitive=True)
_NAME_EQ = FieldSpec("string", _EQ, case_insensitive=True)
_TIME = FieldSpec("datetime", _CMP)
_INT = FieldSpec("int", _CMP)
_BOOL = FieldSpec("bool", _EQ)


def _enum(values: str) -> FieldSpec:
    return FieldSpec("enum", _EQ, frozenset(values.split()))


def _times(*paths: str) -> dict[str, FieldSpec]:
    return {path: _TIME for path in paths}


_RESULT = _enum("success failure")
_COMMON_TIMES = _times("stateTransitionTime", "creationTime", "lastModified")

_JOB = {
    "id": _ID,
    "state": _enum("active disabling disabled enabling terminating completed deleting"),
    **_COMMON_TIMES,
    **_times("executionInfo/startTime", "executionInfo/endTime"),
    "executionInfo/poolId": _ID,
}

_PREP_RELEASE: dict[str, FieldSpec] = {"poolId": _NAME_EQ, "nodeId": _NAME_EQ}
for _p in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"):
    _PREP_RELEASE |= {
        f"{_p}/state": _enum("running completed"),
        **_times(f"{_p}/startTime", f"{_p}/endTime"),
        f"{_p}/exitCode": _INT,
        f"{_p}/result": _RESULT,
    }

_FILES = {"name": FieldSpec("string", frozenset({"startswith"}))}

_TABLE: dict[str, dict[str, FieldSpec]] = {
    "Pool_List": {
        "id": _ID,
        "state": _enum("active deleting"),
        **_COMMON_TIMES,
        "allocationState": _enum("steady resizing stopping"),
        **_times("allocationStateTransitionTime"),
        "enableAutoScale": _BOOL,
        "vmSize": _NAME_EQ,
        "enableInterNodeCommunication": _BOOL,
    },
    "Job_List": _JOB,
    "Job_ListFromJobSchedule": _JOB,
    "Task_List": {
        "id": _ID,
        "state": _enum("active preparing running completed"),
        **_COMMON_TIMES,
        "lastModifiedTime": replace(_TIME, alias_of="lastModified"),
        **_times("executionInfo/startTime", "executionInfo/endTime"),
        "executionInfo/exitCode": _INT,
        "executionInfo/result": _RESULT,
    },
    "Job_ListPreparationAndReleaseTaskStatus": _PREP_RELEASE,
    "ComputeNode_List": {
        "id": FieldSpec("string", _EQ | {"startswith"}, case_insensitive=True),
        "state": _enum(
            "idle rebooting reimaging running unusable creating starting waitingforstarttask "
            "starttaskfailed unknown leavingpool offline preempted upgradingos deallocated deallocating"
        ),
        "schedulingState": _enum("enabled disabled"),
        **_times("stateTransitionTime", "lastBootTime", "allocationTime"),
        "startTaskInfo/state": _enum("running completed"),
        "startTaskInfo/result": _RESULT,
        "startTaskInfo/exitCode": _INT,
        **_times("startTaskInfo/startTime", "startTaskInfo/endTime"),
    },
    "Account_ListPoolNodeCounts": {"poolId": FieldSpec("string", frozenset({"eq"}), case_insensitive=True)},
    "Account_ListSupportedImages": {
        "osType": _enum("linux windows"),
        "verificationType": _enum("verified unverified"),
        "nodeAgentSKUId": _NAME_EQ,
    },
    "File_ListFromTask": _FILES,
    "File_ListFromComputeNode": _FILES,
    "JobSchedule_List": {
        "id": _ID,
        "state": _enum("active completed disabled terminating deleting"),
        **_COMMON_TIMES,
        **_times("executionInfo/endTime", "schedule/doNotRunUntil", "schedule/doNotRunAfter"),
    },
    "Pool_ListUsageMetrics": {"poolId": FieldSpec("string", (_CMP - {"ne"}) | {"startswith"}, case_insensitive=True)},
    "Application_List": {},
    "Certificate_List": {"state": _enum("active deleting deletefailed"), **_times("stateTransitionTime")},
}

#: Filterable properties keyed by operation id (read-only mappings).
FILTERS: dict[str, Mapping[str, FieldSpec]] = {op: MappingProxyType(dict(f)) for op, f in _TABLE.items()}
