"""Compiling bound $filter expressions to SQLAlchemy Core, checked against SQLite and evaluate.py."""

from __future__ import annotations

import random
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from openbatch.domain.errors import BatchError
from openbatch.odata.evaluate import matches
from openbatch.odata.fields import FILTERS, BoundExpr, FieldSpec, parse_filter
from openbatch.store.filters import compile_filter, prefix_upper_bound

UTC = timezone.utc
T0 = datetime(2024, 1, 1, 12, 0)  # naive UTC, as stored

#: A mixed catalogue covering every field kind (including a case-sensitive string).
FIELDS: dict[str, FieldSpec] = {
    **FILTERS["Task_List"],
    "name": FieldSpec("string", frozenset({"startswith", "eq", "ne", "gt", "ge", "lt", "le"})),
    "enableAutoScale": FILTERS["Pool_List"]["enableAutoScale"],
    "executionInfo/poolId": FILTERS["Job_List"]["executionInfo/poolId"],
}

metadata = sa.MetaData()
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True),
    sa.Column("id", sa.String, nullable=False),  # as sent by the client
    sa.Column("id_lower", sa.String, nullable=False),
    sa.Column("name", sa.String),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("result", sa.String),
    sa.Column("creation_time", sa.DateTime, nullable=False),
    sa.Column("last_modified", sa.DateTime, nullable=False),
    sa.Column("start_time", sa.DateTime),
    sa.Column("pool_id", sa.String),
    sa.Column("auto_scale", sa.Boolean),
)

COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "id": tasks.c.id_lower,
    "name": tasks.c.name,
    "state": tasks.c.state,
    "executionInfo/exitCode": tasks.c.exit_code,
    "executionInfo/result": tasks.c.result,
    "creationTime": tasks.c.creation_time,
    "lastModified": tasks.c.last_modified,
    "executionInfo/startTime": tasks.c.start_time,
    "executionInfo/poolId": tasks.c.pool_id,
    "enableAutoScale": tasks.c.auto_scale,
}
PATH_OF = {path: column.key for path, column in COLUMNS.items()} | {"id": "id"}

_IDS = [
    "task-1", "task-2", "Task-10", "other", "ab", "ab-x", "ac", "aB", "a\U0010ffff", "a\U0010ffffz",
    "a\ud7ff", "a\ud7ffz", "a\ue000", "it's", "zz\u00e9", "",
]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i, ident in enumerate(_IDS):
        completed = i % 3 != 2
        rows.append(
            {
                "pk": i,
                "id": ident,
                "id_lower": ident.lower(),
                "name": None if i % 5 == 3 else ident.upper() if i % 2 else ident,
                "state": ("completed" if completed else "running") if i % 7 else "active",
                "exit_code": (i % 4 - 1) if completed else None,
                "result": (("success" if i % 4 == 1 else "failure") if completed else None),
                "creation_time": T0 + timedelta(minutes=i),
                "last_modified": T0 + timedelta(hours=i % 3, microseconds=i),
                "start_time": None if i % 4 == 0 else T0 + timedelta(seconds=30 * i),
                "pool_id": None if i % 6 == 0 else f"Pool{i % 3}".lower(),
                "auto_scale": None if i % 5 == 0 else bool(i % 2),
            }
        )
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(tasks.insert(), ROWS)
    yield engine
    engine.dispose()


def sql_select(engine: sa.Engine, bound: BoundExpr) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(tasks.c.id).where(compile_filter(bound, COLUMNS))))


def memory_select(bound: BoundExpr) -> set[str]:
    def getter(row: dict[str, Any]) -> Any:
        def get(path: str) -> Any:
            value = row[PATH_OF[path]]
            return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value

        return get

    return {row["id"] for row in ROWS if matches(bound, getter(row))}


def query(engine: sa.Engine, text: str) -> set[str]:
    return sql_select(engine, parse_filter(text, FIELDS))


# --- SQL results -------------------------------------------------------------------------------


def test_equality_and_case_insensitive_ids(engine: sa.Engine) -> None:
    assert query(engine, "id eq 'TASK-10'") == {"Task-10"}
    assert query(engine, "id eq 'ab' or id eq 'AB'") == {"ab", "aB"}
    assert query(engine, "name eq 'ab'") == {"ab"}  # case-sensitive


def test_startswith_ranges(engine: sa.Engine) -> None:
    assert query(engine, "startswith(id, 'task-1')") == {"task-1", "Task-10"}
    assert query(engine, "startswith(id, 'ab')") == {"ab", "ab-x", "aB"}
    assert query(engine, "startswith(id, 'a\U0010ffff')") == {"a\U0010ffff", "a\U0010ffffz"}
    assert query(engine, "startswith(id, 'a\ud7ff')") == {"a\ud7ff", "a\ud7ffz"}
    assert query(engine, "startswith(id, 'it''s')") == {"it's"}
    assert query(engine, "startswith(id, '%')") == set()  # no LIKE wildcards
    assert query(engine, "startswith(id, '_')") == set()


def test_startswith_empty_prefix_matches_every_non_null_value(engine: sa.Engine) -> None:
    assert query(engine, "startswith(id, '')") == set(_IDS)
    assert query(engine, "startswith(name, '')") == {r["id"] for r in ROWS if r["name"] is not None}


def test_ne_includes_nulls(engine: sa.Engine) -> None:
    no_code = {r["id"] for r in ROWS if r["exit_code"] is None}
    assert no_code
    assert query(engine, "executionInfo/exitCode ne 0") == {r["id"] for r in ROWS if r["exit_code"] != 0}
    assert no_code <= query(engine, "executionInfo/exitCode ne 0")
    assert not no_code & query(engine, "executionInfo/exitCode ge -5")


def test_not_treats_unknown_as_false(engine: sa.Engine) -> None:
    no_code = {r["id"] for r in ROWS if r["exit_code"] is None}
    assert no_code <= query(engine, "not executionInfo/exitCode gt 0")
    assert not no_code & query(engine, "not executionInfo/exitCode ne 0")


def test_datetimes_compare_as_naive_utc(engine: sa.Engine) -> None:
    assert query(engine, "creationTime eq DateTime'2024-01-01T12:03:00Z'") == {_IDS[3]}
    assert query(engine, "creationTime eq DateTime'2024-01-01T13:03:00+01:00'") == {_IDS[3]}
    assert query(engine, "creationTime lt DateTime'Mon, 01 Jan 2024 12:02:00 GMT'") == set(_IDS[:2])
    assert len(query(engine, "lastModifiedTime ge DateTime'2024-01-01T14:00:00'")) == len(
        [r for r in ROWS if r["last_modified"] >= T0 + timedelta(hours=2)]
    )


def test_bools(engine: sa.Engine) -> None:
    assert query(engine, "enableAutoScale eq true") == {r["id"] for r in ROWS if r["auto_scale"] is True}
    assert query(engine, "enableAutoScale ne true") == {r["id"] for r in ROWS if r["auto_scale"] is not True}


def test_enum_mapped_through_lower() -> None:
    """A store keeping camelCase enum values maps the property to func.lower(column)."""
    nodes = sa.Table("nodes", sa.MetaData(), sa.Column("id", sa.String), sa.Column("state", sa.String))
    engine = sa.create_engine("sqlite://")
    nodes.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(nodes.insert(), [{"id": "n1", "state": "waitingForStartTask"}, {"id": "n2", "state": "idle"}])
        bound = parse_filter("state eq 'WaitingForStartTask'", FILTERS["ComputeNode_List"])
        where = compile_filter(bound, {"state": sa.func.lower(nodes.c.state)})
        assert conn.scalars(sa.select(nodes.c.id).where(where)).all() == ["n1"]
    engine.dispose()


def test_statement_cache_does_not_mix_up_values(engine: sa.Engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for prefix, expected in [("task-1", {"task-1", "Task-10"}), ("ab", {"ab", "ab-x", "aB"}), ("ot", {"other"})]:
            assert query(engine, f"startswith(id, '{prefix}') and id gt 'a'") == expected


def test_missing_column_is_a_clear_programming_error() -> None:
    with pytest.raises(LookupError, match="executionInfo/exitCode"):
        compile_filter(parse_filter("executionInfo/exitCode eq 0", FIELDS), {})


# --- PostgreSQL rendering ----------------------------------------------------------------------


def test_renders_for_postgresql() -> None:
    text = (
        "not (startswith(id, 'Ab') and executionInfo/exitCode ne 0) or "
        "creationTime gt DateTime'2011-05-08T10:49:37+02:00' and id lt 'M' and enableAutoScale eq true"
    )
    compiled = compile_filter(parse_filter(text, FIELDS), COLUMNS).compile(dialect=postgresql.psycopg.dialect())
    sql = " ".join(str(compiled).split())
    assert sql.startswith('NOT coalesce((tasks.id_lower) COLLATE "C" >= %(param_1)s')
    assert '(tasks.id_lower) COLLATE "C" < %(param_2)s' in sql
    assert "tasks.exit_code != %(exit_code_1)s::INTEGER OR tasks.exit_code IS NULL), false) OR " in sql
    assert "tasks.creation_time > %(creation_time_1)s" in sql
    assert '(tasks.id_lower) COLLATE "C" < %(param_3)s' in sql
    assert "LIKE" not in sql
    params = compiled.params
    assert params["param_1"] == "ab" and params["param_2"] == "ac" and params["param_3"] == "m"
    assert params["creation_time_1"] == datetime(2011, 5, 8, 8, 49, 37)
    assert params["creation_time_1"].tzinfo is None


def test_postgresql_literal_rendering() -> None:
    bound = parse_filter("startswith(id, 'x') or creationTime le DateTime'2020-01-01'", FIELDS)
    sql = str(
        compile_filter(bound, COLUMNS).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    assert sql == (
        "(tasks.id_lower) COLLATE \"C\" >= 'x' AND (tasks.id_lower) COLLATE \"C\" < 'y' "
        "OR tasks.creation_time <= '2020-01-01 00:00:00'"
    )


def test_bound_values_do_not_inherit_the_column_collation() -> None:
    """psycopg renders bind casts; a second COLLATE on the value would conflict with "C"."""
    table = sa.table("t", sa.column("id", sa.String(collation="und-x-icu")))
    bound = parse_filter("startswith(id, 'x') and id gt 'a'", FIELDS)
    sql = str(compile_filter(bound, {"id": table.c.id}).compile(dialect=postgresql.psycopg.dialect()))
    assert sql.count('COLLATE "C"') == 3
    assert "und-x-icu" not in sql


def test_sqlite_has_no_collate_clause() -> None:
    bound = parse_filter("startswith(id, 'x') and id lt 'y'", FIELDS)
    sql = str(compile_filter(bound, COLUMNS).compile(dialect=sqlite.dialect()))
    assert "COLLATE" not in sql


# --- prefix bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("a", "b"),
        ("abc", "abd"),
        ("a'", "a("),
        ("z", "{"),
        ("\x7f", "\x80"),
        ("a\ud7ff", "a\ue000"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert prefix_upper_bound(prefix) == upper


def test_prefix_upper_bound_is_tight() -> None:
    rng = random.Random(3)
    alphabet = ["a", "b", "z", "\x7f", "\xff", "\ud7ff", "\ue000", "\U0010ffff", "\U0010fffe"]
    for _ in range(2000):
        prefix = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        upper = prefix_upper_bound(prefix)
        in_range = word >= prefix and (upper is None or word < upper)
        assert in_range == word.startswith(prefix), (prefix, word, upper)


# --- agreement with evaluate.py ----------------------------------------------------------------

AGREEMENT = [
    "state eq 'completed'",
    "state ne 'running'",
    "id gt 'task-1'",
    "id le 'ab-x'",
    "startswith(id, 'a')",
    "startswith(name, 'T')",
    "startswith(executionInfo/poolId, 'POOL1')",
    "executionInfo/exitCode eq 0",
    "executionInfo/exitCode ne 0",
    "executionInfo/exitCode lt 1",
    "not executionInfo/exitCode ge 1",
    "not (executionInfo/exitCode eq 0 or executionInfo/result eq 'success')",
    "not executionInfo/result ne 'failure'",
    "executionInfo/result ne 'success' and state ne 'active'",
    "executionInfo/startTime gt DateTime'2024-01-01T12:02:00Z'",
    "not executionInfo/startTime le DateTime'2024-01-01T12:02:00Z'",
    "lastModified ge DateTime'2024-01-01T13:00:00.000003Z'",
    "enableAutoScale ne false or not executionInfo/poolId eq 'pool2'",
    "not (not enableAutoScale eq true and name ne 'AB')",
    "name lt 'a' or name gt 'task'",
    "executionInfo/poolId ne 'pool1' and not startswith(executionInfo/poolId, 'pool2')",
]


@pytest.mark.parametrize("text", AGREEMENT)
def test_sql_agrees_with_evaluate(engine: sa.Engine, text: str) -> None:
    bound = parse_filter(text, FIELDS)
    assert sql_select(engine, bound) == memory_select(bound)


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return f"({_random_condition(rng, depth + 1)} {rng.choice(['and', 'or'])} {_random_condition(rng, depth + 1)})"
    if depth < 3 and roll < 0.4:
        return f"not {_random_condition(rng, depth + 1)}"
    row = rng.choice(ROWS)
    path = rng.choice(sorted(COLUMNS))
    spec = FIELDS[path]
    raw = row[PATH_OF[path]]
    if spec.kind in ("string", "enum") and "startswith" in spec.ops and rng.random() < 0.3:
        prefix = (raw or "")[: rng.randint(0, 3)].replace("'", "''")
        return f"startswith({path}, '{prefix}')"
    op = rng.choice(sorted(spec.ops - {"startswith"}))
    if spec.kind == "datetime":
        when = (raw or T0) + timedelta(seconds=rng.choice([-1, 0, 0, 1]))
        literal = f"DateTime'{when.isoformat()}Z'"
    elif spec.kind == "int":
        literal = str(raw if raw is not None else rng.randint(-2, 2))
    elif spec.kind == "bool":
        literal = rng.choice(["true", "false"])
    elif spec.kind == "enum":
        literal = f"'{rng.choice(sorted(spec.values))}'"
    else:
        literal = "'" + (raw or "x").replace("'", "''") + "'"
    return f"{path} {op} {literal}"


def test_sql_agrees_with_evaluate_on_random_filters(engine: sa.Engine) -> None:
    rng = random.Random(1234)
    distinct = set()
    for _ in range(400):
        bound = parse_filter(_random_condition(rng), FIELDS)
        selected = sql_select(engine, bound)
        assert selected == memory_select(bound), bound
        distinct.add(frozenset(selected))
    assert len(distinct) > 50  # the filters actually discriminate between rows


def test_fuzz_compile_and_execute_only_batch_errors(engine: sa.Engine) -> None:
    rng = random.Random(42)
    pieces = [
        "id", "name", "state", "executionInfo/exitCode", "creationTime", "enableAutoScale", "eq", "ne",
        "gt", "le", "and", "or", "not", "(", ")", "startswith(id,", "'x'", "'%_'", "0", "-1",
        "99999999999999999999", "9223372036854775807", "true", "DateTime'2024-01-01'",
        "DateTime'9999-12-31T23:59:59Z'", "DateTime'0001-01-01'", "'\U0010ffff'", ",", "'é'",
    ]
    ok = 0
    for i in range(3000):
        text = _random_condition(rng) if i % 3 == 0 else " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        try:
            bound = parse_filter(text, FIELDS)
        except BatchError as exc:
            assert exc.code == "InvalidQueryParameterValue"
            continue
        sql_select(engine, bound)
        compile_filter(bound, COLUMNS).compile(dialect=postgresql.psycopg.dialect())
        ok += 1
    assert ok > 1000
