"""A recursive-descent parser for autoscale formulas.

Grammar (C precedence, lowest first)::

    formula    := statement (separator statement)* [separator]
    separator  := ';' | a line break before the next statement
    statement  := NAME '=' expr | expr
    expr       := or ['?' expr ':' expr]
    or         := and ('||' and)*         and := equality ('&&' equality)*
    equality   := relation (('==' | '!=') relation)*
    relation   := sum (('<' | '<=' | '>' | '>=') sum)*
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/') unary)*
    unary      := ('-' | '!') unary | postfix
    postfix    := primary ('.' NAME ['(' args ')'])*
    primary    := NUMBER | STRING | NAME ['(' args ')'] | '(' expr ')' | '{' [args] '}'

A statement may span lines; a line break ends it only where the expression is
complete (``a = 1`` newline ``b = 2``). Names are checked here: unknown functions,
sample methods or timestamp members, wrong argument counts and assignments to
read-only service variables are syntax errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import nodes as n
from .errors import MAX_STATEMENTS, TOO_LONG, FormulaSyntaxError, check_length
from .lexer import T, Token, tokenize
from .names import (
    ALIASES,
    FUNCTIONS,
    INTERVALS,
    METHODS,
    SYSTEM,
    TIMESTAMP_FIELDS,
    Kind,
    canonical,
    system_name,
)

_RELATIONS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Formula:
    """A parsed formula: immutable and reusable across evaluations."""

    text: str
    statements: tuple[n.Node, ...]


def parse(text: str) -> Formula:
    """Parse ``text``; raise :class:`FormulaSyntaxError` with a 1-based line and column."""
    check_length(text)
    tokens = tokenize(text)
    try:
        return Formula(text, _Parser(tokens).formula())
    except RecursionError:
        raise FormulaSyntaxError(1, 1, "the formula is nested too deeply") from None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def at(self, *ops: str) -> bool:
        return self.tok.type is T.OP and self.tok.text in ops

    def advance(self) -> Token:
        token = self.tok
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def fail(self, what: str, token: Token | None = None) -> FormulaSyntaxError:
        token = token or self.tok
        return FormulaSyntaxError(token.line, token.column, f"expected {what} but found {token.describe()}")

    def expect(self, op: str, what: str | None = None) -> Token:
        if not self.at(op):
            raise self.fail(what or f"'{op}'")
        return self.advance()

    # -- statements ----------------------------------------------------------------------
    def formula(self) -> tuple[n.Node, ...]:
        statements: list[n.Node] = []
        while True:
            while self.at(";"):
                self.advance()
            if self.tok.type is T.END:
                break
            if len(statements) == MAX_STATEMENTS:
                raise FormulaSyntaxError(self.tok.line, self.tok.column,
                                         f"a formula may have at most {MAX_STATEMENTS} statements", TOO_LONG)
            statements.append(self.statement())
            if self.at(";"):
                self.advance()
            elif self.tok.type is not T.END and not self.tok.newline_before:
                raise self.fail("';' or a line break after the statement")
        if not statements:
            raise self.fail("a statement")
        return tuple(statements)

    def statement(self) -> n.Node:
        token = self.tok
        if token.type is T.NAME and self.peek().type is T.OP and self.peek().text == "=":
            self.advance()
            self.advance()
            value = self.expression()
            system = system_name(token.text)
            if system is not None:
                kind = SYSTEM[canonical(system)]
                if kind not in (Kind.TARGET, Kind.DEALLOCATION):
                    raise FormulaSyntaxError(token.line, token.column,
                                             f"{system} is a read-only service-defined variable")
                return n.Assign(token.line, token.column, canonical(system), value, True, system in ALIASES)
            if token.text in INTERVALS:
                raise FormulaSyntaxError(token.line, token.column, f"{token.text} is a constant")
            return n.Assign(token.line, token.column, token.text, value)
        return n.Expression(token.line, token.column, self.expression())

    # -- expressions ---------------------------------------------------------------------
    def expression(self) -> n.Node:
        condition = self.binary(0)
        if not self.at("?"):
            return condition
        self.advance()
        then = self.expression()
        self.expect(":", "':' of the conditional operator")
        return n.Conditional(condition.line, condition.column, condition, then, self.expression())

    _LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), ("==", "!="), _RELATIONS, ("+", "-"), ("*", "/"))

    def binary(self, level: int) -> n.Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at(*self._LEVELS[level]):
            op = self.advance()
            left = n.Binary(op.line, op.column, op.text, left, self.binary(level + 1))
        return left

    def unary(self) -> n.Node:
        if self.at("-", "!"):
            op = self.advance()
            return n.Unary(op.line, op.column, op.text, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: n.Node) -> n.Node:
        while self.at("."):
            self.advance()
            name = self.tok
            if name.type is not T.NAME or name.text.startswith("$"):
                raise self.fail("a method or member name")
            self.advance()
            if self.at("("):
                node = self.method(node, name)
            elif name.text in TIMESTAMP_FIELDS:
                node = n.Field(name.line, name.column, node, name.text)
            else:
                raise FormulaSyntaxError(name.line, name.column, f"unknown timestamp member '{name.text}' "
                                         f"(members are {', '.join(TIMESTAMP_FIELDS)})")
        return node

    def method(self, target: n.Node, name: Token) -> n.Node:
        paren = self.tok
        if name.text not in METHODS:
            raise FormulaSyntaxError(name.line, name.column, f"unknown sample method '{name.text}' "
                                     f"(methods are {', '.join(METHODS)})")
        if not isinstance(target, n.System) or SYSTEM[target.name] not in (Kind.METRIC, Kind.COUNT):
            raise FormulaSyntaxError(name.line, name.column,
                                     f"{name.text}() applies only to a sampled service-defined variable")
        args = self.arguments(")")
        low, high = METHODS[name.text]
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise FormulaSyntaxError(paren.line, paren.column,
                                     f"{name.text}() takes {expected} arguments, not {len(args)}")
        return n.Method(paren.line, paren.column, target.name, name.text, args)

    def arguments(self, close: str) -> tuple[n.Node, ...]:
        """Parse ``( a, b )`` or ``{ a, b }`` from the opening bracket on."""
        self.advance()
        args: list[n.Node] = []
        if not self.at(close):
            args.append(self.expression())
            while self.at(","):
                self.advance()
                args.append(self.expression())
        self.expect(close, f"',' or '{close}'")
        return tuple(args)

    def primary(self) -> n.Node:
        token = self.tok
        if token.type is T.NUMBER:
            self.advance()
            return n.Number(token.line, token.column, float(token.value or 0))
        if token.type is T.STRING:
            self.advance()
            return n.String(token.line, token.column, str(token.value))
        if self.at("("):
            self.advance()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("{"):
            return n.Vector(token.line, token.column, self.arguments("}"))
        if token.type is not T.NAME:
            raise self.fail("an expression")
        self.advance()
        if self.at("(") and not self.tok.newline_before:
            return self.call(token)
        if token.text in INTERVALS:
            return n.Interval(token.line, token.column, token.text, INTERVALS[token.text])
        system = system_name(token.text)
        if system is not None:
            return n.System(token.line, token.column, canonical(system), system)
        return n.Variable(token.line, token.column, token.text)

    def call(self, name: Token) -> n.Node:
        if name.text not in FUNCTIONS:
            raise FormulaSyntaxError(name.line, name.column, f"unknown function '{name.text}'")
        args = self.arguments(")")
        low, high = FUNCTIONS[name.text]
        if len(args) < low or (high is not None and len(args) > high):
            expected = (f"at least {_plural(low, 'argument')}" if high is None else
                        _plural(low, "argument") if low == high else f"{low} to {high} arguments")
            raise FormulaSyntaxError(name.line, name.column, f"{name.text}() takes {expected}, not {len(args)}")
        return n.Call(name.line, name.column, name.text, args)
