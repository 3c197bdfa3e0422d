"""Tokens of an autoscale formula.

Numbers (``180``, ``0.7``, ``1e3``), strings (``"..."`` with ``\\"`` and ``\\\\``
escapes), names (user variables with or without ``$``, service variables,
functions, constants), the operators of the docs' table and ``//`` comments.
Each token records its 1-based line and column and whether a line break
precedes it: a line break may end a statement (see the parser).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import FormulaSyntaxError


class T(Enum):
    """Token types."""

    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    OP = "operator"
    END = "end of formula"


#: Operators, longest first so that ``<=`` wins over ``<``.
OPERATORS = ("&&", "||", "<=", ">=", "==", "!=", "+", "-", "*", "/", "<", ">", "!", "?", ":", "=",
             "(", ")", "{", "}", ",", ".", ";")


@dataclass(frozen=True, slots=True)
class Token:
    type: T
    text: str
    line: int
    column: int
    newline_before: bool = False
    value: float | str | None = None

    def describe(self) -> str:
        """How an error message names this token."""
        if self.type is T.END:
            return "the end of the formula"
        if self.type is T.STRING:
            return f"string {self.text}"
        return f"'{self.text}'"


def _is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``END`` token; raise on a bad character."""
    tokens: list[Token] = []
    i, line, line_start, newline = 0, 1, 0, False
    n = len(text)
    while i < n:
        ch = text[i]
        column = i - line_start + 1
        if ch == "\n":
            i, line, line_start, newline = i + 1, line + 1, i + 1, True
            continue
        if ch in " \t\r\f\v":
            i += 1
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        start = i
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            while i < n and text[i].isdigit():
                i += 1
            if i < n and text[i] == "." and i + 1 < n and text[i + 1].isdigit():
                i += 1
                while i < n and text[i].isdigit():
                    i += 1
            elif i < n and text[i] == "." and not (i + 1 < n and _is_name_start(text[i + 1])):
                i += 1  # "5." is a number; "5.x" is not
            if i < n and text[i] in "eE":
                j = i + 1
                if j < n and text[j] in "+-":
                    j += 1
                if j < n and text[j].isdigit():
                    i = j
                    while i < n and text[i].isdigit():
                        i += 1
            if i < n and _is_name_char(text[i]):
                raise FormulaSyntaxError(line, i - line_start + 1, f"unexpected character '{text[i]}' in a number")
            tokens.append(Token(T.NUMBER, text[start:i], line, column, newline, float(text[start:i])))
        elif _is_name_start(ch) or ch == "$":
            i += 1
            while i < n and _is_name_char(text[i]):
                i += 1
            if text[start:i] == "$":
                raise FormulaSyntaxError(line, column, "expected a variable name after '$'")
            tokens.append(Token(T.NAME, text[start:i], line, column, newline))
        elif ch == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n or text[i] == "\n":
                    raise FormulaSyntaxError(line, column, "unterminated string")
                if text[i] == '"':
                    i += 1
                    break
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    i += 1
                chars.append(text[i])
                i += 1
            tokens.append(Token(T.STRING, text[start:i], line, column, newline, "".join(chars)))
        else:
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise FormulaSyntaxError(line, column, f"unexpected character '{ch}'")
            i += len(op)
            tokens.append(Token(T.OP, op, line, column, newline))
        newline = False
    tokens.append(Token(T.END, "", line, n - line_start + 1, newline))
    return tokens
