"""Binding $filter ASTs against the per-operation catalogue of filterable properties."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from openbatch.domain.errors import BatchError
from openbatch.odata.fields import (
    FILTERS,
    BoundAnd,
    BoundComparison,
    BoundExpr,
    BoundNot,
    BoundOr,
    BoundStartsWith,
    FieldSpec,
    bind,
    parse_filter,
)
from openbatch.odata.filter import parse

UTC = timezone.utc
ALL = "eq ne gt ge lt le"

# An independent restatement of the documented table: operation -> property -> (kind, ops, values).
_T = ("datetime", ALL, "")
_INT = ("int", ALL, "")
_ID = ("string-ci", "startswith " + ALL, "")
_RESULT = ("enum", "eq ne", "success failure")
_PREP = {
    f"{p}/{k}": v
    for p in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo")
    for k, v in {
        "state": ("enum", "eq ne", "running completed"),
        "startTime": _T,
        "endTime": _T,
        "exitCode": _INT,
        "result": _RESULT,
    }.items()
}
_JOB = {
    "id": _ID,
    "state": ("enum", "eq ne", "active disabling disabled enabling terminating completed deleting"),
    "stateTransitionTime": _T,
    "creationTime": _T,
    "lastModified": _T,
    "executionInfo/startTime": _T,
    "executionInfo/endTime": _T,
    "executionInfo/poolId": _ID,
}
EXPECTED: dict[str, dict[str, tuple[str, str, str]]] = {
    "Pool_List": {
        "id": _ID,
        "state": ("enum", "eq ne", "active deleting"),
        "stateTransitionTime": _T,
        "allocationState": ("enum", "eq ne", "steady resizing stopping"),
        "allocationStateTransitionTime": _T,
        "creationTime": _T,
        "lastModified": _T,
        "enableAutoScale": ("bool", "eq ne", ""),
        "vmSize": ("string-ci", "eq ne", ""),
        "enableInterNodeCommunication": ("bool", "eq ne", ""),
    },
    "Job_List": _JOB,
    "Job_ListFromJobSchedule": _JOB,
    "Task_List": {
        "id": _ID,
        "state": ("enum", "eq ne", "active preparing running completed"),
        "stateTransitionTime": _T,
        "creationTime": _T,
        "lastModified": _T,
        "lastModifiedTime": _T,
        "executionInfo/startTime": _T,
        "executionInfo/endTime": _T,
        "executionInfo/exitCode": _INT,
        "executionInfo/result": _RESULT,
    },
    "Job_ListPreparationAndReleaseTaskStatus": {
        "poolId": ("string-ci", "eq ne", ""),
        "nodeId": ("string-ci", "eq ne", ""),
        **_PREP,
    },
    "ComputeNode_List": {
        "id": ("string-ci", "eq ne startswith", ""),
        "state": (
            "enum",
            "eq ne",
            "idle rebooting reimaging running unusable creating starting waitingforstarttask "
            "starttaskfailed unknown leavingpool offline preempted upgradingos deallocated deallocating",
        ),
        "schedulingState": ("enum", "eq ne", "enabled disabled"),
        "stateTransitionTime": _T,
        "lastBootTime": _T,
        "allocationTime": _T,
        "startTaskInfo/state": ("enum", "eq ne", "running completed"),
        "startTaskInfo/result": _RESULT,
        "startTaskInfo/exitCode": _INT,
        "startTaskInfo/startTime": _T,
        "startTaskInfo/endTime": _T,
    },
    "Account_ListPoolNodeCounts": {"poolId": ("string-ci", "eq", "")},
    "Account_ListSupportedImages": {
        "osType": ("enum", "eq ne", "linux windows"),
        "verificationType": ("enum", "eq ne", "verified unverified"),
        "nodeAgentSKUId": ("string-ci", "eq ne", ""),
    },
    "File_ListFromTask": {"name": ("string", "startswith", "")},
    "File_ListFromComputeNode": {"name": ("string", "startswith", "")},
    "JobSchedule_List": {
        "id": _ID,
        "state": ("enum", "eq ne", "active completed disabled terminating deleting"),
        "stateTransitionTime": _T,
        "creationTime": _T,
        "lastModified": _T,
        "executionInfo/endTime": _T,
        "schedule/doNotRunUntil": _T,
        "schedule/doNotRunAfter": _T,
    },
    "Pool_ListUsageMetrics": {"poolId": ("string-ci", "eq ge gt le lt startswith", "")},
    "Application_List": {},
    "Certificate_List": {"state": ("enum", "eq ne", "active deleting deletefailed"), "stateTransitionTime": _T},
}


def _describe(spec: FieldSpec) -> tuple[str, str, str]:
    kind = "string-ci" if spec.kind == "string" and spec.case_insensitive else spec.kind
    return (kind, " ".join(sorted(spec.ops)), " ".join(sorted(spec.values)))


def _norm(entry: tuple[str, str, str]) -> tuple[str, str, str]:
    kind, ops, values = entry
    return (kind, " ".join(sorted(ops.split())), " ".join(sorted(values.split())))


def test_catalogue_matches_the_documented_table() -> None:
    assert set(FILTERS) == set(EXPECTED)
    for operation, expected in EXPECTED.items():
        actual = {path: _describe(spec) for path, spec in FILTERS[operation].items()}
        assert actual == {path: _norm(e) for path, e in expected.items()}, operation


def test_catalogue_invariants() -> None:
    for operation, fields in FILTERS.items():
        for path, spec in fields.items():
            assert spec.ops <= {"eq", "ne", "gt", "ge", "lt", "le", "startswith"}, (operation, path)
            assert all(v == v.lower() for v in spec.values)
            assert bool(spec.values) == (spec.kind == "enum")
            if "startswith" in spec.ops:
                assert spec.kind == "string"
            if spec.alias_of is not None:
                assert spec.alias_of in fields


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        FILTERS["Pool_List"]["bogus"] = FieldSpec("int", frozenset({"eq"}))  # type: ignore[index]


def bad(text: str, operation: str) -> str:
    with pytest.raises(BatchError) as exc:
        parse_filter(text, FILTERS[operation])
    assert exc.value.code == "InvalidQueryParameterValue" and exc.value.status == 400
    values = dict(exc.value.values)
    assert values["QueryParameterName"] == "$filter" and values["QueryParameterValue"] == text
    return values["Reason"]


def one(text: str, operation: str) -> BoundComparison:
    bound = parse_filter(text, FILTERS[operation])
    assert isinstance(bound, BoundComparison)
    return bound


# --- every documented (operation, property, operator) combination binds ----------------------

_SAMPLE = {
    "datetime": "DateTime'2020-01-02T03:04:05Z'",
    "int": "3",
    "bool": "true",
    "string": "'Abc'",
    "string-ci": "'Abc'",
}


def _combinations() -> list[tuple[str, str, str]]:
    cases = []
    for operation, fields in EXPECTED.items():
        for path, (kind, ops, values) in fields.items():
            for op in ops.split():
                literal = f"'{values.split()[0].upper()}'" if kind == "enum" else _SAMPLE[kind]
                text = f"startswith({path}, 'Ab')" if op == "startswith" else f"{path} {op} {literal}"
                cases.append((operation, path, text))
    return cases


@pytest.mark.parametrize(("operation", "path", "text"), _combinations())
def test_documented_combination_binds(operation: str, path: str, text: str) -> None:
    bound = parse_filter(text, FILTERS[operation])
    assert isinstance(bound, (BoundComparison, BoundStartsWith))
    assert bound.path == ("lastModified" if path == "lastModifiedTime" else path)


@pytest.mark.parametrize(
    ("operation", "text"),
    [
        ("Pool_List", "state gt 'active'"),
        ("Pool_List", "startswith(state, 'act')"),
        ("Pool_List", "enableAutoScale lt true"),
        ("Pool_List", "vmSize gt 'a'"),
        ("Pool_List", "startswith(vmSize, 'standard')"),
        ("Pool_List", "startswith(creationTime, '2020')"),
        ("ComputeNode_List", "id gt 'a'"),
        ("Account_ListPoolNodeCounts", "poolId ne 'a'"),
        ("File_ListFromTask", "name eq 'stdout.txt'"),
        ("Task_List", "startswith(executionInfo/exitCode, '1')"),
    ],
)
def test_undocumented_operator_is_rejected(operation: str, text: str) -> None:
    assert "is not supported for property" in bad(text, operation)


def test_operator_error_names_operator_and_property() -> None:
    assert bad("state gt 'active'", "Pool_List") == (
        "Operator 'gt' is not supported for property 'state' (supported: eq, ne)"
    )


def test_unknown_property() -> None:
    assert bad("stat eq 'active'", "Pool_List") == (
        "The property 'stat' is not supported in $filter for this operation"
    )
    assert "'executionInfo/exitCode'" in bad("executionInfo/exitCode eq 0", "Pool_List")


def test_property_names_are_case_sensitive() -> None:
    reason = bad("State eq 'active'", "Pool_List")
    assert "The property 'State' is not supported" in reason
    assert "did you mean 'state'?" in reason
    assert "did you mean 'executionInfo/exitCode'" in bad("ExecutionInfo/ExitCode eq 0", "Task_List")


@pytest.mark.parametrize("operation", ["Application_List"])
def test_operations_without_filter_support(operation: str) -> None:
    assert bad("id eq 'a'", operation) == "$filter is not supported for this operation"


def test_unknown_property_inside_a_compound_expression() -> None:
    assert "'bogus'" in bad("id eq 'a' and (state eq 'active' or not bogus eq 1)", "Pool_List")


# --- value coercion ----------------------------------------------------------------------------


def test_enum_values_are_case_insensitive_and_lowercased() -> None:
    assert one("state eq 'Active'", "Pool_List").value == "active"
    assert one("state ne 'WAITINGFORSTARTTASK'", "ComputeNode_List").value == "waitingforstarttask"
    assert one("state eq 'waitingForStartTask'", "ComputeNode_List").value == "waitingforstarttask"


def test_enum_value_must_be_known() -> None:
    reason = bad("state eq 'sleeping'", "Pool_List")
    assert reason == "The value 'sleeping' is not valid for property 'state'; expected one of 'active', 'deleting'"


def test_case_insensitive_strings_are_lowercased() -> None:
    assert one("id eq 'MyPool'", "Pool_List").value == "mypool"
    assert one("vmSize eq 'STANDARD_D2s_v3'", "Pool_List").value == "standard_d2s_v3"
    assert one("executionInfo/poolId ge 'PoolB'", "Job_List").value == "poolb"
    bound = parse_filter("startswith(id, 'MyPool')", FILTERS["Job_List"])
    assert bound == BoundStartsWith("id", "mypool", FILTERS["Job_List"]["id"])


def test_case_sensitive_strings_are_kept() -> None:
    bound = parse_filter("startswith(name, 'Std')", FILTERS["File_ListFromTask"])
    assert isinstance(bound, BoundStartsWith) and bound.prefix == "Std"


def test_values_keep_quotes_and_spaces() -> None:
    assert one("id eq 'It''s A Pool'", "Pool_List").value == "it's a pool"


def test_datetimes_are_aware_utc() -> None:
    bound = one("creationTime gt DateTime'2011-05-08T10:49:37+02:00'", "Pool_List")
    assert bound.value == datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)
    assert isinstance(bound.value, datetime) and bound.value.tzinfo == UTC


def test_ints_and_bools() -> None:
    assert one("executionInfo/exitCode ge -1", "Task_List").value == -1
    bound = one("enableAutoScale eq TRUE", "Pool_List")
    assert bound.value is True


def test_alias_binds_to_canonical_path() -> None:
    assert one("lastModifiedTime lt DateTime'2020-01-01'", "Task_List").path == "lastModified"
    assert one("lastModified lt DateTime'2020-01-01'", "Task_List").path == "lastModified"
    assert "'lastModifiedTime'" in bad("lastModifiedTime lt DateTime'2020-01-01'", "Pool_List")


@pytest.mark.parametrize(
    ("operation", "text", "expected"),
    [
        ("Task_List", "executionInfo/exitCode eq '0'", "expected an integer"),
        ("Task_List", "executionInfo/exitCode eq 1.5", "expected an integer"),
        ("Task_List", "executionInfo/exitCode eq 1.0", "expected an integer"),
        ("Task_List", "executionInfo/exitCode eq true", "expected an integer"),
        ("Task_List", "executionInfo/exitCode eq DateTime'2020-01-01'", "expected an integer"),
        ("Pool_List", "creationTime gt '2020-01-01T00:00:00Z'", "expected a DateTime literal"),
        ("Pool_List", "creationTime gt 0", "expected a DateTime literal"),
        ("Pool_List", "enableAutoScale eq 'true'", "expected true or false"),
        ("Pool_List", "enableAutoScale eq 1", "expected true or false"),
        ("Pool_List", "id eq 5", "expected a string in single quotes"),
        ("Pool_List", "id eq true", "expected a string in single quotes"),
        ("Pool_List", "state eq 1", "expected one of 'active', 'deleting'"),
        ("Pool_List", "state eq true", "expected one of"),
    ],
)
def test_literal_type_must_fit(operation: str, text: str, expected: str) -> None:
    reason = bad(text, operation)
    assert "is not valid for property" in reason and expected in reason


def test_bind_preserves_structure() -> None:
    text = "not (state eq 'active' or id eq 'A') and startswith(id, 'P')"
    bound = bind(parse(text), FILTERS["Pool_List"], text)
    assert isinstance(bound, BoundAnd)
    negated, starts = bound.operands
    assert isinstance(negated, BoundNot) and isinstance(negated.operand, BoundOr)
    assert [o.value for o in negated.operand.operands] == ["active", "a"]  # type: ignore[union-attr]
    assert starts == BoundStartsWith("id", "p", FILTERS["Pool_List"]["id"])


def test_bound_ast_is_hashable() -> None:
    bound: BoundExpr = parse_filter("id eq 'a' or not enableAutoScale eq true", FILTERS["Pool_List"])
    assert hash(bound) == hash(parse_filter("id eq 'a' or not enableAutoScale eq true", FILTERS["Pool_List"]))


def test_fuzz_binding_only_raises_batch_errors() -> None:
    rng = random.Random(99)
    props = sorted({p for fields in FILTERS.values() for p in fields}) + ["Id", "bogus", "a/b/c"]
    literals = ["'a'", "'Active'", "'running'", "0", "-5", "1.5", "true", "false", "DateTime'2020-01-01'", "''"]
    ok = 0
    for _ in range(5000):
        operation = rng.choice(sorted(FILTERS))
        terms = []
        for _ in range(rng.randint(1, 3)):
            own = sorted(FILTERS[operation])
            prop = rng.choice(own if own and rng.random() < 0.8 else props)
            if rng.random() < 0.2:
                terms.append(f"startswith({prop}, {rng.choice(literals[:2])})")
            else:
                terms.append(f"{prop} {rng.choice(ALL.split())} {rng.choice(literals)}")
        text = f" {rng.choice(['and', 'or'])} ".join(terms)
        try:
            parse_filter(text, FILTERS[operation])
            ok += 1
        except BatchError as exc:
            assert exc.code == "InvalidQueryParameterValue"
    assert ok > 100
