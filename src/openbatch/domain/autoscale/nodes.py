"""The syntax tree of a formula: immutable nodes that carry their 1-based position."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: float


@dataclass(frozen=True, slots=True)
class String(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Interval(Node):
    """A ``TimeInterval_*`` constant, in 100 ns ticks."""

    name: str
    ticks: int


@dataclass(frozen=True, slots=True)
class Variable(Node):
    """A user variable (``x`` or ``$x``) or a bare-word deallocation option."""

    name: str


@dataclass(frozen=True, slots=True)
class System(Node):
    """A service-defined variable, by canonical name (``written`` keeps an alias)."""

    name: str
    written: str


@dataclass(frozen=True, slots=True)
class Vector(Node):
    """A ``{a, b, ...}`` literal."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """A binary operator; ``line``/``column`` are the operator's."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Method(Node):
    """``$Metric.Method(args)``; ``line``/``column`` are those of the ``(``."""

    variable: str
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Field(Node):
    """``timestamp.member``."""

    target: Node
    name: str


@dataclass(frozen=True, slots=True)
class Assign(Node):
    """``name = value``: ``name`` is a user variable or a canonical settable system name."""

    name: str
    value: Node
    system: bool = False
    alias: bool = False


@dataclass(frozen=True, slots=True)
class Expression(Node):
    """A statement that is only an expression (``stop();``)."""

    value: Node
