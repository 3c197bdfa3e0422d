"""In-memory evaluation of bound $filter expressions."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openbatch.odata.evaluate import matches
from openbatch.odata.fields import FILTERS, parse_filter

UTC = timezone.utc
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

TASKS: list[dict[str, Any]] = [
    {"id": "task-1", "state": "completed", "executionInfo/exitCode": 0, "executionInfo/result": "success",
     "creationTime": T0, "lastModified": T0 + timedelta(hours=1)},
    {"id": "task-2", "state": "completed", "executionInfo/exitCode": 3, "executionInfo/result": "failure",
     "creationTime": T0 + timedelta(minutes=5), "lastModified": T0 + timedelta(hours=2)},
    {"id": "Task-10", "state": "running", "executionInfo/exitCode": None, "executionInfo/result": None,
     "creationTime": T0 + timedelta(minutes=10), "lastModified": T0},
    {"id": "other", "state": "active", "creationTime": T0 + timedelta(days=1), "lastModified": T0},
]


def select(text: str, items: list[dict[str, Any]] = TASKS, operation: str = "Task_List") -> list[str]:
    bound = parse_filter(text, FILTERS[operation])
    return [item["id"] for item in items if matches(bound, item.get)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state eq 'completed'", ["task-1", "task-2"]),
        ("state eq 'COMPLETED'", ["task-1", "task-2"]),
        ("state ne 'completed'", ["Task-10", "other"]),
        ("id eq 'TASK-1'", ["task-1"]),
        ("id eq 'task-10'", ["Task-10"]),
        ("startswith(id, 'task-1')", ["task-1", "Task-10"]),
        ("startswith(id, 'TASK')", ["task-1", "task-2", "Task-10"]),
        ("startswith(id, '')", ["task-1", "task-2", "Task-10", "other"]),
        ("id gt 'task-1'", ["task-2", "Task-10"]),
        ("id le 'task-10'", ["task-1", "Task-10", "other"]),
        ("executionInfo/exitCode eq 0", ["task-1"]),
        ("executionInfo/exitCode ne 0", ["task-2", "Task-10", "other"]),
        ("executionInfo/exitCode gt 0", ["task-2"]),
        ("executionInfo/exitCode ge 0", ["task-1", "task-2"]),
        ("executionInfo/exitCode lt 3", ["task-1"]),
        ("executionInfo/exitCode le -1", []),
        ("executionInfo/result eq 'failure'", ["task-2"]),
        ("executionInfo/result ne 'failure'", ["task-1", "Task-10", "other"]),
        ("not executionInfo/exitCode gt 0", ["task-1", "Task-10", "other"]),
        ("not executionInfo/exitCode ne 0", ["task-1"]),
        ("not not executionInfo/exitCode eq 0", ["task-1"]),
        ("creationTime gt DateTime'2024-01-01T12:05:00Z'", ["Task-10", "other"]),
        ("creationTime ge DateTime'2024-01-01T13:05:00+01:00'", ["task-2", "Task-10", "other"]),
        ("creationTime eq DateTime'Mon, 01 Jan 2024 12:00:00 GMT'", ["task-1"]),
        ("lastModifiedTime gt DateTime'2024-01-01T12:00:00'", ["task-1", "task-2"]),
        ("state eq 'completed' and executionInfo/exitCode ne 0", ["task-2"]),
        ("state eq 'active' or executionInfo/exitCode eq 0", ["task-1", "other"]),
        ("not (state eq 'active' or executionInfo/exitCode eq 0)", ["task-2", "Task-10"]),
        ("state eq 'running' or state eq 'active' and executionInfo/exitCode eq 0", ["Task-10"]),
        ("(state eq 'running' or state eq 'active') and executionInfo/exitCode eq 0", []),
        ("startswith(id,'task') eq false", ["other"]),
    ],
)
def test_task_filters(text: str, expected: list[str]) -> None:
    assert select(text) == expected


def test_missing_values_compare_false_except_ne() -> None:
    item: dict[str, Any] = {"id": "x"}
    for op in ("eq", "gt", "ge", "lt", "le"):
        assert not matches(parse_filter(f"executionInfo/exitCode {op} 0", FILTERS["Task_List"]), item.get)
    assert matches(parse_filter("executionInfo/exitCode ne 0", FILTERS["Task_List"]), item.get)
    assert not matches(parse_filter("startswith(executionInfo/poolId, '')", FILTERS["Job_List"]), item.get)


def test_naive_datetimes_from_the_item_are_utc() -> None:
    bound = parse_filter("creationTime eq DateTime'2024-01-01T12:00:00Z'", FILTERS["Task_List"])
    assert matches(bound, {"creationTime": datetime(2024, 1, 1, 12, 0)}.get)
    other_zone = datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert matches(bound, {"creationTime": other_zone}.get)


def test_enum_members_and_camel_case_values() -> None:
    class NodeState(enum.Enum):
        WAITING = "waitingForStartTask"

    bound = parse_filter("state eq 'waitingforstarttask'", FILTERS["ComputeNode_List"])
    assert matches(bound, {"state": NodeState.WAITING}.get)
    assert matches(bound, {"state": "waitingForStartTask"}.get)


def test_bools() -> None:
    pools = [
        {"id": "a", "enableAutoScale": True},
        {"id": "b", "enableAutoScale": False},
        {"id": "c", "enableAutoScale": None},
    ]
    assert select("enableAutoScale eq true", pools, "Pool_List") == ["a"]
    assert select("enableAutoScale ne true", pools, "Pool_List") == ["b", "c"]
    assert select("enableAutoScale eq false", pools, "Pool_List") == ["b"]


def test_case_sensitive_file_names() -> None:
    files = [{"name": "stdout.txt"}, {"name": "StdErr.txt"}, {"name": "wd/out"}]
    bound = parse_filter("startswith(name, 'std')", FILTERS["File_ListFromTask"])
    assert [f["name"] for f in files if matches(bound, f.get)] == ["stdout.txt"]


def test_get_is_called_with_canonical_paths() -> None:
    seen: list[str] = []

    def get(path: str) -> Any:
        seen.append(path)
        return None

    matches(parse_filter("lastModifiedTime gt DateTime'2020-01-01' or id eq 'x'", FILTERS["Task_List"]), get)
    assert seen == ["lastModified", "id"]


def test_and_or_short_circuit() -> None:
    def get(path: str) -> Any:
        if path == "id":
            raise AssertionError("should not be evaluated")
        return "active"

    assert matches(parse_filter("state eq 'active' or id eq 'x'", FILTERS["Task_List"]), get)
    assert not matches(parse_filter("state eq 'running' and id eq 'x'", FILTERS["Task_List"]), get)
