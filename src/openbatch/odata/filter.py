"""OData ``$filter`` lexer and recursive-descent parser (the subset Azure Batch accepts).

Grammar (keywords and the function name are case-insensitive; property names are not)::

    filter     := or
    or         := and ('or' and)*
    and        := unary ('and' unary)*
    unary      := 'not' unary | primary
    primary    := '(' or ')' | startswith | path op literal
    startswith := 'startswith' '(' path ',' string ')' [('eq' | 'ne') ('true' | 'false')]
    path       := identifier ('/' identifier)*
    op         := 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'
    literal    := string | integer | decimal | 'true' | 'false' | DateTime'...'

The result is an immutable AST; ``and``/``or`` chains are flattened into n-ary nodes.
Every error raises ``invalid_query("$filter", text, reason)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal, NoReturn, Union

from openbatch.domain.errors import invalid_query

COMPARISON_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
#: Nesting limit for parentheses and ``not`` (keeps every recursive walk shallow).
MAX_DEPTH = 32
#: Limit on the number of conditions (keeps the SQL parameter count bounded).
MAX_TERMS = 256
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_KEYWORDS = COMPARISON_OPS | {"and", "or", "not"}

LiteralKind = Literal["string", "int", "decimal", "bool", "datetime"]


@dataclass(frozen=True)
class LiteralValue:
    """A literal; ``value`` is str, int, Decimal, bool or an aware UTC datetime."""

    kind: LiteralKind
    value: str | int | Decimal | bool | datetime
    text: str  # the source spelling, for error messages


@dataclass(frozen=True)
class Comparison:
    path: str  # e.g. "executionInfo/exitCode"
    op: str  # lowercase, one of COMPARISON_OPS
    value: LiteralValue


@dataclass(frozen=True)
class StartsWith:
    path: str
    prefix: str


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Union[Comparison, StartsWith, And, Or, Not]


@dataclass(frozen=True)
class _Token:
    kind: str  # "ident" "string" "int" "decimal" "datetime" "(" ")" "," "/" "end"
    text: str
    pos: int
    value: object = None


def parse(text: str) -> Expr:
    """Parse ``text`` into an AST; raise a 400 ``BatchError`` when it is not a valid filter."""
    return _Parser(text).parse()


# --- lexer -------------------------------------------------------------------------------


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?([0-9]+)(\.[0-9]+)?")
_SPACE = re.compile(r"\s*")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[_Token] = []
        self.index = 0
        self.terms = 0

    def fail(self, reason: str) -> NoReturn:
        raise invalid_query("$filter", self.text, reason)

    def lex(self) -> None:
        text, n, i = self.text, len(self.text), 0
        while (i := _SPACE.match(text, i).end()) < n:  # type: ignore[union-attr]
            c = text[i]
            if c in "(),/":
                self.tokens.append(_Token(c, c, i))
                i += 1
            elif c == "'":
                value, end = self.lex_quoted(i)
                self.tokens.append(_Token("string", text[i:end], i, value))
                i = end
            elif number := _NUMBER.match(text, i):
                i = self.lex_number(number)
            elif ident := _IDENT.match(text, i):
                quote = _SPACE.match(text, ident.end()).end()  # type: ignore[union-attr]
                if ident[0].lower() == "datetime" and text.startswith("'", quote):
                    raw, end = self.lex_quoted(quote)
                    self.tokens.append(_Token("datetime", text[i:end], i, self.parse_datetime(raw)))
                    i = end
                else:
                    self.tokens.append(_Token("ident", ident[0], i))
                    i = ident.end()
            else:
                self.fail(f"Unexpected character {c!r} at position {i + 1}")
        self.tokens.append(_Token("end", "", n))

    def lex_quoted(self, start: int) -> tuple[str, int]:
        """Read a single-quoted string starting at ``start``; ``''`` stands for one quote."""
        text, i, parts = self.text, start + 1, []
        while True:
            close = text.find("'", i)
            if close < 0:
                self.fail(f"Unterminated string literal starting at position {start + 1}")
            parts.append(text[i:close])
            if not text.startswith("''", close):
                return "".join(parts), close + 1
            parts.append("'")
            i = close + 2

    def lex_number(self, match: re.Match[str]) -> int:
        spelling, end = match[0], match.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_.'"):
            self.fail(f"Malformed number starting at position {match.start() + 1}")
        value: int | Decimal
        if match[2]:
            value = Decimal(spelling)
        elif len(match[1].lstrip("0")) > 19 or not _INT64_MIN <= (value := int(spelling)) <= _INT64_MAX:
            self.fail(f"The integer {spelling} is out of range")
        self.tokens.append(_Token("decimal" if match[2] else "int", spelling, match.start(), value))
        return end

    def parse_datetime(self, raw: str) -> datetime:
        parsed = _parse_datetime(raw)
        if parsed is None:
            self.fail(
                f"'{raw}' is not a valid DateTime; use ISO 8601 (DateTime'2011-05-08T08:49:37Z') "
                "or RFC 1123 (DateTime'Sun, 08 May 2011 08:49:37 GMT')"
            )
        return parsed

    # --- parser ----------------------------------------------------------------------------

    def parse(self) -> Expr:
        if "\x00" in self.text:
            self.fail("The $filter contains a NUL character")
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("The $filter contains characters that are not valid Unicode")
        if not self.text.strip():
            self.fail("The $filter expression is empty")
        self.lex()
        expr = self.parse_or(0)
        tok = self.peek()
        if tok.kind != "end":
            self.fail(f"Unexpected '{tok.text}' at position {tok.pos + 1}; expected 'and', 'or' or the end")
        return expr

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        tok = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return tok

    def expect(self, kind: str, what: str) -> _Token:
        tok = self.take()
        if tok.kind != kind:
            self.fail(f"Expected {what} {self.where(tok)}")
        return tok

    def where(self, tok: _Token) -> str:
        if tok.kind == "end":
            return "but the expression ended"
        return f"but found '{tok.text}' at position {tok.pos + 1}"

    @staticmethod
    def is_word(tok: _Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.text.lower() in words

    def parse_or(self, depth: int) -> Expr:
        operands = [self.parse_and(depth)]
        while self.is_word(self.peek(), "or"):
            self.take()
            operands.append(self.parse_and(depth))
        return _join(Or, operands)

    def parse_and(self, depth: int) -> Expr:
        operands = [self.parse_unary(depth)]
        while self.is_word(self.peek(), "and"):
            self.take()
            operands.append(self.parse_unary(depth))
        return _join(And, operands)

    def parse_unary(self, depth: int) -> Expr:
        if depth >= MAX_DEPTH:
            self.fail(f"The $filter is nested too deeply (more than {MAX_DEPTH} levels)")
        if self.is_word(self.peek(), "not"):
            self.take()
            return Not(self.parse_unary(depth + 1))
        return self.parse_primary(depth)

    def parse_primary(self, depth: int) -> Expr:
        tok = self.take()
        if tok.kind == "(":
            expr = self.parse_or(depth + 1)
            self.expect(")", "')'")
            return expr
        if tok.kind == "ident" and tok.text.lower() not in _KEYWORDS | {"true", "false"}:
            if self.peek().kind == "(":
                if tok.text.lower() != "startswith":
                    self.fail(f"The function '{tok.text}' is not supported; only startswith is")
                return self.count(self.parse_startswith())
            path = self.parse_path(tok)
            op = self.take()
            if not self.is_word(op, *COMPARISON_OPS):
                self.fail(f"Expected a comparison operator (eq, ne, gt, ge, lt, le) after '{path}' {self.where(op)}")
            return self.count(Comparison(path, op.text.lower(), self.parse_literal(op)))
        if tok.kind in ("string", "int", "decimal", "datetime") or self.is_word(tok, "true", "false"):
            self.fail(
                f"A comparison must have a property name on its left; found the literal {tok.text} "
                f"at position {tok.pos + 1}"
            )
        self.fail(f"Expected a condition {self.where(tok)}")

    def count(self, expr: Expr) -> Expr:
        self.terms += 1
        if self.terms > MAX_TERMS:
            self.fail(f"The $filter has too many conditions (more than {MAX_TERMS})")
        return expr

    def parse_path(self, first: _Token) -> str:
        segments = [first.text]
        while self.peek().kind == "/":
            self.take()
            tok = self.take()
            if tok.kind != "ident" or tok.text.lower() in _KEYWORDS:
                self.fail(f"Expected a property name after '/' {self.where(tok)}")
            segments.append(tok.text)
        return "/".join(segments)

    def parse_literal(self, op: _Token) -> LiteralValue:
        tok = self.take()
        if tok.kind in ("string", "int", "decimal", "datetime"):
            return LiteralValue(tok.kind, tok.value, tok.text)  # type: ignore[arg-type]
        if self.is_word(tok, "true", "false"):
            return LiteralValue("bool", tok.text.lower() == "true", tok.text)
        if tok.kind == "ident":
            self.fail(
                f"The right side of '{op.text}' must be a literal value (string, number, true/false "
                f"or DateTime'...'); found '{tok.text}' at position {tok.pos + 1}"
            )
        self.fail(f"Expected a literal value after '{op.text}' {self.where(tok)}")

    def parse_startswith(self) -> Expr:
        self.take()  # "("
        path = self.parse_path(self.expect("ident", "a property name as the first argument of startswith"))
        self.expect(",", "',' after the first argument of startswith")
        prefix = self.expect("string", "a string literal as the second argument of startswith")
        self.expect(")", "')' after the arguments of startswith")
        expr: Expr = StartsWith(path, str(prefix.value))
        if self.is_word(self.peek(), *COMPARISON_OPS):
            op, value = self.take(), self.take()
            if not (self.is_word(op, "eq", "ne") and self.is_word(value, "true", "false")):
                self.fail("startswith(...) can only be compared to true or false with eq or ne")
            if (op.text.lower() == "eq") != (value.text.lower() == "true"):
                expr = Not(expr)
        return expr


def _join(cls: type[And] | type[Or], operands: list[Expr]) -> Expr:
    if len(operands) == 1:
        return operands[0]
    flat: list[Expr] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, cls) else (operand,))
    return cls(tuple(flat))


# --- DateTime literals ---------------------------------------------------------------------

_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"\s*(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?",
    re.ASCII,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_RFC1123 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?([0-9]{1,2})\s+([a-z]{3})\s+([0-9]{4})\s+"
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?\s+(?:gmt|utc|ut|z|([+-])([0-9]{2})([0-9]{2}))",
    re.ASCII | re.IGNORECASE,
)


def _parse_datetime(raw: str) -> datetime | None:
    """Parse W3C-DTF/ISO 8601 or RFC 1123 text into an aware UTC datetime (naive means UTC)."""
    raw = raw.strip()
    try:
        if m := _ISO.fullmatch(raw):
            year, month, day, hour, minute, second, frac, _z, sign, off_h, off_m = m.groups()
            micro = int((frac or "")[:6].ljust(6, "0"))
            parts = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
            return _to_utc(datetime(*parts, micro), sign, off_h, off_m)
        if m := _RFC1123.fullmatch(raw):
            day, mon, year, hour, minute, second, sign, off_h, off_m = m.groups()
            if mon.lower() not in _MONTHS:
                return None
            month = _MONTHS.index(mon.lower()) + 1
            parts = (int(year), month, int(day), int(hour), int(minute), int(second or 0))
            return _to_utc(datetime(*parts), sign, off_h, off_m)
    except (ValueError, OverflowError):
        return None
    return None


def _to_utc(naive: datetime, sign: str | None, off_h: str | None, off_m: str | None) -> datetime:
    if sign is None:
        return naive.replace(tzinfo=timezone.utc)
    if int(off_m or 0) > 59:
        raise ValueError("offset minutes out of range")
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    aware = naive.replace(tzinfo=timezone(-offset if sign == "-" else offset))
    return aware.astimezone(timezone.utc)
