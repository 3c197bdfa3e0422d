"""The $filter lexer and parser: syntax, literals, precedence, and error reporting."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from openbatch.domain.errors import BatchError
from openbatch.odata.filter import (
    MAX_DEPTH,
    MAX_TERMS,
    And,
    Comparison,
    LiteralValue,
    Not,
    Or,
    StartsWith,
    parse,
)

UTC = timezone.utc


def cmp(path: str, op: str, value: object) -> tuple[str, str, object]:
    return (path, op, value)


def leaf(expr: object) -> tuple[str, str, object]:
    assert isinstance(expr, Comparison)
    return (expr.path, expr.op, expr.value.value)


def reason(exc: pytest.ExceptionInfo[BatchError]) -> str:
    return dict(exc.value.values)["Reason"]


def bad(text: str) -> str:
    """Parse ``text`` expecting a 400 and return the reason."""
    with pytest.raises(BatchError) as exc:
        parse(text)
    assert exc.value.code == "InvalidQueryParameterValue"
    assert exc.value.status == 400
    values = dict(exc.value.values)
    assert values["QueryParameterName"] == "$filter"
    assert values["QueryParameterValue"] == text
    return values["Reason"]


# --- comparisons and literals ----------------------------------------------------------------


@pytest.mark.parametrize("op", ["eq", "ne", "gt", "ge", "lt", "le"])
def test_each_operator(op: str) -> None:
    assert leaf(parse(f"id {op} 'a'")) == ("id", op, "a")


@pytest.mark.parametrize("spelling", ["EQ", "Eq", "eQ"])
def test_operators_are_case_insensitive(spelling: str) -> None:
    assert leaf(parse(f"state {spelling} 'active'")) == ("state", "eq", "active")


def test_property_paths_keep_their_case() -> None:
    assert leaf(parse("executionInfo/exitCode eq 0")) == ("executionInfo/exitCode", "eq", 0)
    assert leaf(parse("jobPreparationTaskExecutionInfo / state eq 'running'"))[0] == (
        "jobPreparationTaskExecutionInfo/state"
    )
    assert leaf(parse("State eq 'x'"))[0] == "State"


@pytest.mark.parametrize(
    ("literal", "kind", "value"),
    [
        ("'abc'", "string", "abc"),
        ("''", "string", ""),
        ("'it''s'", "string", "it's"),
        ("''''", "string", "'"),
        ("'a b  c'", "string", "a b  c"),
        ("'eq and or not ( )'", "string", "eq and or not ( )"),
        ("'ünï©ødé'", "string", "ünï©ødé"),
        ("0", "int", 0),
        ("42", "int", 42),
        ("-7", "int", -7),
        ("-0", "int", 0),
        ("9223372036854775807", "int", 2**63 - 1),
        ("-9223372036854775808", "int", -(2**63)),
        ("1.5", "decimal", Decimal("1.5")),
        ("-0.25", "decimal", Decimal("-0.25")),
        ("true", "bool", True),
        ("false", "bool", False),
        ("TRUE", "bool", True),
        ("False", "bool", False),
    ],
)
def test_literals(literal: str, kind: str, value: object) -> None:
    expr = parse(f"x eq {literal}")
    assert isinstance(expr, Comparison)
    assert expr.value == LiteralValue(kind, value, literal)  # type: ignore[arg-type]
    assert type(expr.value.value) is type(value)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("DateTime'2011-05-08T08:49:37Z'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("datetime'2011-05-08T08:49:37Z'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DATETIME'2011-05-08T08:49:37z'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime '2011-05-08T08:49:37Z'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49:37'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49'", datetime(2011, 5, 8, 8, 49, tzinfo=UTC)),
        ("DateTime'2011-05-08'", datetime(2011, 5, 8, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49:37.5Z'", datetime(2011, 5, 8, 8, 49, 37, 500000, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49:37.1234567Z'", datetime(2011, 5, 8, 8, 49, 37, 123456, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49:37+02:00'", datetime(2011, 5, 8, 6, 49, 37, tzinfo=UTC)),
        ("DateTime'2011-05-08T08:49:37-0530'", datetime(2011, 5, 8, 14, 19, 37, tzinfo=UTC)),
        ("DateTime'2011-05-08T00:30:00+01:00'", datetime(2011, 5, 7, 23, 30, tzinfo=UTC)),
        ("DateTime'Sun, 08 May 2011 08:49:37 GMT'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime'sun, 8 may 2011 08:49:37 gmt'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime'08 May 2011 08:49:37 GMT'", datetime(2011, 5, 8, 8, 49, 37, tzinfo=UTC)),
        ("DateTime'Sun, 08 May 2011 08:49:37 +0200'", datetime(2011, 5, 8, 6, 49, 37, tzinfo=UTC)),
    ],
)
def test_datetime_literals(literal: str, expected: datetime) -> None:
    expr = parse(f"creationTime gt {literal}")
    assert isinstance(expr, Comparison)
    assert expr.value.kind == "datetime"
    value = expr.value.value
    assert isinstance(value, datetime)
    assert value == expected
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2011-13-08T08:49:37Z",
        "2011-02-30T08:49:37Z",
        "2011-05-08T25:00:00Z",
        "2011-05-08T08:60:00Z",
        "2011-05-08T08:49:37+25:00",
        "2011-05-08T08:49:37+01:75",
        "2011-05-08T08:49:37.Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "Sun, 08 Foo 2011 08:49:37 GMT",
        "Sun, 32 May 2011 08:49:37 GMT",
        "Sun, 08 May 2011 08:49:37",
        "2011-05-08T08:49:37Z junk",
        "２０１１-05-08T08:49:37Z",
    ],
)
def test_bad_datetime_literals(raw: str) -> None:
    assert "is not a valid DateTime" in bad(f"creationTime gt DateTime'{raw}'")


def test_whitespace_is_free() -> None:
    compact = parse("(id eq 'a')and(not(state eq 'b'))")
    spaced = parse("  (\tid   eq\n'a' )  and ( not ( state eq 'b' ) )  ")
    assert compact == spaced


# --- structure ---------------------------------------------------------------------------------


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    expr = parse("a eq 1 or not b eq 2 and c eq 3")
    assert isinstance(expr, Or)
    first, second = expr.operands
    assert leaf(first) == ("a", "eq", 1)
    assert isinstance(second, And)
    negated, third = second.operands
    assert isinstance(negated, Not) and leaf(negated.operand) == ("b", "eq", 2)
    assert leaf(third) == ("c", "eq", 3)


def test_parentheses_override_precedence() -> None:
    expr = parse("(a eq 1 or b eq 2) and c eq 3")
    assert isinstance(expr, And)
    assert isinstance(expr.operands[0], Or)


def test_chains_are_flattened() -> None:
    expr = parse("a eq 1 and b eq 2 and (c eq 3 and d eq 4)")
    assert isinstance(expr, And) and [leaf(o)[0] for o in expr.operands] == ["a", "b", "c", "d"]
    expr = parse("a eq 1 OR b eq 2 Or c eq 3")
    assert isinstance(expr, Or) and len(expr.operands) == 3


def test_keywords_are_case_insensitive() -> None:
    assert parse("NOT a eq 1 AND b eq 2") == parse("not a eq 1 and b eq 2")


def test_double_negation_is_kept() -> None:
    expr = parse("not not a eq 1")
    assert isinstance(expr, Not) and isinstance(expr.operand, Not)


def test_startswith() -> None:
    assert parse("startswith(id, 'abc')") == StartsWith("id", "abc")
    assert parse("StartsWith ( executionInfo/poolId , 'it''s' )") == StartsWith("executionInfo/poolId", "it's")
    assert parse("startswith(name,'')") == StartsWith("name", "")


def test_startswith_compared_to_booleans() -> None:
    plain = StartsWith("id", "a")
    assert parse("startswith(id,'a') eq true") == plain
    assert parse("startswith(id,'a') ne false") == plain
    assert parse("startswith(id,'a') eq false") == Not(plain)
    assert parse("startswith(id,'a') ne true") == Not(plain)


def test_ast_is_immutable_and_hashable() -> None:
    expr = parse("a eq 1 and startswith(b,'x')")
    assert hash(expr) == hash(parse("a eq 1 and startswith(b,'x')"))
    with pytest.raises(AttributeError):
        expr.operands = ()  # type: ignore[misc]


def test_limits_are_generous_enough() -> None:
    nested = "(" * (MAX_DEPTH - 1) + "a eq 1" + ")" * (MAX_DEPTH - 1)
    assert leaf(parse(nested)) == ("a", "eq", 1)
    many = " or ".join(f"id eq '{i}'" for i in range(MAX_TERMS))
    assert len(parse(many).operands) == MAX_TERMS  # type: ignore[union-attr]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("id", "Expected a comparison operator"),
        ("id eq", "Expected a literal value after 'eq' but the expression ended"),
        ("id equals 'a'", "Expected a comparison operator"),
        ("id = 'a'", "Unexpected character '='"),
        ("id eq 'a' and", "Expected a condition but the expression ended"),
        ("id eq 'a' or or id eq 'b'", "Expected a condition but found 'or'"),
        ("id eq 'a' id eq 'b'", "Unexpected 'id'"),
        ("id eq 'a' eq 'b'", "Unexpected 'eq'"),
        ("(id eq 'a'", "Expected ')' but the expression ended"),
        ("id eq 'a')", "Unexpected ')'"),
        ("()", "Expected a condition but found ')'"),
        ("'a' eq id", "property name on its left"),
        ("5 eq id", "property name on its left"),
        ("true eq enableAutoScale", "property name on its left"),
        ("DateTime'2011-05-08' lt creationTime", "property name on its left"),
        ("id eq name", "must be a literal value"),
        ("id eq null", "must be a literal value"),
        ("id eq 'abc", "Unterminated string"),
        ("id eq 'it''s", "Unterminated string"),
        ("exitCode eq 1e5", "Malformed number"),
        ("exitCode eq 1.", "Malformed number"),
        ("exitCode eq 1.2.3", "Malformed number"),
        ("exitCode eq --1", "Unexpected character '-'"),
        ("exitCode eq -", "Unexpected character '-'"),
        ("exitCode eq - 1", "Unexpected character '-'"),
        ("exitCode eq 1é", "Malformed number"),
        ("exitCode eq 12abc", "Malformed number"),
        ("exitCode eq 9223372036854775808", "out of range"),
        ("exitCode eq -9223372036854775809", "out of range"),
        ("exitCode eq " + "9" * 5000, "out of range"),
        ("a/ eq 1", "Expected a property name after '/'"),
        ("/a eq 1", "Expected a condition but found '/'"),
        ("endswith(id, 'a')", "function 'endswith' is not supported"),
        ("substringof('a', id)", "function 'substringof' is not supported"),
        ("startswith(id)", "Expected ','"),
        ("startswith('a', id)", "Expected a property name as the first argument"),
        ("startswith(id, 5)", "Expected a string literal as the second argument"),
        ("startswith(id, 'a', 'b')", "Expected ')'"),
        ("startswith(id, 'a') eq 'x'", "can only be compared to true or false"),
        ("startswith(id, 'a') gt true", "can only be compared to true or false"),
        ("startswith", "Expected a comparison operator"),
        ("not", "Expected a condition but the expression ended"),
        ("and id eq 'a'", "Expected a condition but found 'and'"),
        ("or(id eq 'a')", "Expected a condition but found 'or'"),
        ("true(id)", "property name on its left"),
        ("id eq 'a' && id eq 'b'", "Unexpected character '&'"),
        ("id eq \"a\"", "Unexpected character '\"'"),
        ("état eq 'a'", "Unexpected character 'é'"),
        ("id eq 'a\x00'", "NUL"),
        ("id eq '\ud800'", "not valid Unicode"),
    ],
)
def test_syntax_errors(text: str, fragment: str) -> None:
    assert fragment in bad(text)


def test_error_positions_are_one_based() -> None:
    assert "position 4" in bad("id = 'a'")


def test_nesting_limit() -> None:
    assert "nested too deeply" in bad("(" * 10_000 + "a eq 1" + ")" * 10_000)
    assert "nested too deeply" in bad("not " * 10_000 + "a eq 1")


def test_term_limit() -> None:
    text = " or ".join(f"id eq '{i}'" for i in range(MAX_TERMS + 1))
    assert "too many conditions" in bad(text)


# --- fuzz --------------------------------------------------------------------------------------

_PIECES = [
    "id", "state", "executionInfo/exitCode", "/", "eq", "ne", "gt", "lt", "ge", "le", "and", "or",
    "not", "(", ")", ",", "startswith", "'x'", "'it''s'", "'", "''", "0", "-1", "1.5", "-", ".",
    "true", "false", "null", "DateTime", "DateTime'2011-05-08T08:49:37Z'", "DateTime'bad'",
    "datetime'Sun, 08 May 2011 08:49:37 GMT'", " ", "\t", "\x00", "é", "\ud800", "=", "&", "$",
    "9" * 30, "endswith",
]


def _random_filter(rng: random.Random, depth: int = 0) -> str:
    """A syntactically valid filter."""
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        op = rng.choice(["and", "or", "AND", "Or"])
        return f"{_random_filter(rng, depth + 1)} {op} {_random_filter(rng, depth + 1)}"
    if depth < 3 and roll < 0.3:
        return f"not ({_random_filter(rng, depth + 1)})"
    if roll < 0.4:
        prefix = rng.choice(["", "a", "x''y"])
        return f"startswith({rng.choice(['id', 'name'])}, '{prefix}')"
    prop = rng.choice(["id", "state", "executionInfo/exitCode", "creationTime", "enableAutoScale"])
    value = rng.choice(["'a'", "0", "-3", "2.5", "true", "DateTime'2011-05-08T08:49:37Z'"])
    return f"{prop} {rng.choice(['eq', 'ne', 'gt', 'ge', 'lt', 'le'])} {value}"


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        where = rng.randint(0, len(chars))
        action = rng.random()
        if action < 0.4 and chars:
            del chars[min(where, len(chars) - 1)]
        elif action < 0.8:
            chars.insert(where, rng.choice(_PIECES))
        else:
            chars[where:where] = chars[: rng.randint(0, len(chars))]
    return "".join(chars)


def _random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '()/,.-+:_\t\n\"\\%*?é\x00"
    texts = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        elif kind == 1:
            texts.append(" ".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12))))
        elif kind == 2:
            texts.append(_random_filter(rng))
        else:
            texts.append(_mutate(rng, _random_filter(rng)))
    return texts


def test_fuzz_only_batch_errors() -> None:
    parsed = failed = 0
    for text in _random_texts(seed=20240521, count=20_000):
        try:
            parse(text)
            parsed += 1
        except BatchError as exc:
            failed += 1
            assert exc.code == "InvalidQueryParameterValue"
            assert dict(exc.values)["Reason"]
    assert parsed > 5000 and failed > 5000  # both paths are exercised


def test_generated_filters_parse() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        parse(_random_filter(rng))
