"""Tokens: numbers, strings, names, operators, comments, positions and line breaks."""

import pytest

from openbatch.domain.autoscale import FormulaSyntaxError
from openbatch.domain.autoscale.lexer import T, tokenize


def kinds(text: str) -> list[tuple[T, str]]:
    return [(t.type, t.text) for t in tokenize(text)[:-1]]


def test_statement_tokens() -> None:
    assert kinds("$x = avg({1, 2.5}) >= .5;") == [
        (T.NAME, "$x"), (T.OP, "="), (T.NAME, "avg"), (T.OP, "("), (T.OP, "{"), (T.NUMBER, "1"), (T.OP, ","),
        (T.NUMBER, "2.5"), (T.OP, "}"), (T.OP, ")"), (T.OP, ">="), (T.NUMBER, ".5"), (T.OP, ";")]


@pytest.mark.parametrize(("text", "value"), [("180", 180.0), ("0.7", 0.7), ("1e3", 1000.0), ("2.5E-1", 0.25),
                                             (".5", 0.5), ("5.", 5.0)])
def test_numbers(text: str, value: float) -> None:
    token = tokenize(text)[0]
    assert token.type is T.NUMBER and token.value == value


def test_operators_longest_first() -> None:
    assert [t.text for t in tokenize("a<=b==c!=d&&e||!f")[:-1]] == [
        "a", "<=", "b", "==", "c", "!=", "d", "&&", "e", "||", "!", "f"]


def test_strings_and_escapes() -> None:
    token = tokenize(r'"a \"b\" \\ c"')[0]
    assert token.type is T.STRING and token.value == 'a "b" \\ c'


def test_comments_positions_and_line_breaks() -> None:
    tokens = tokenize("// comment\n  $a = 1; // trailing\nb = 2")
    a, eq = tokens[0], tokens[1]
    assert (a.text, a.line, a.column, a.newline_before) == ("$a", 2, 3, True)
    assert (eq.line, eq.column, eq.newline_before) == (2, 6, False)
    b = tokens[4]
    assert (b.text, b.line, b.column, b.newline_before) == ("b", 3, 1, True)
    assert tokens[-1].type is T.END


def test_dot_after_name_is_an_operator() -> None:
    assert kinds("$t.hour") == [(T.NAME, "$t"), (T.OP, "."), (T.NAME, "hour")]


@pytest.mark.parametrize(("text", "line", "column", "detail"), [
    ("a = 1 # 2", 1, 7, "unexpected character '#'"),
    ('a = "open', 1, 5, "unterminated string"),
    ("a = $ + 1", 1, 5, "expected a variable name after '$'"),
    ("\n  a = 12ab", 2, 9, "unexpected character 'a' in a number"),
    ("a = 1 % 2", 1, 7, "unexpected character '%'"),
])
def test_bad_characters(text: str, line: int, column: int, detail: str) -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        tokenize(text)
    assert (caught.value.line, caught.value.column, caught.value.detail) == (line, column, detail)
