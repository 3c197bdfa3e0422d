"""Parsing: statements, separators, precedence, names, and syntax errors with line and column."""

import pytest

from openbatch.domain.autoscale import MAX_FORMULA_LENGTH, FormulaSyntaxError, check_length, parse
from openbatch.domain.autoscale import nodes as n
from openbatch.domain.autoscale.errors import SYNTAX_ERROR, TOO_LONG


def only(text: str) -> n.Node:
    (statement,) = parse(text).statements
    return statement.value if isinstance(statement, (n.Assign, n.Expression)) else statement


def shape(node: n.Node) -> object:
    """A compact, position-free picture of an expression."""
    if isinstance(node, n.Binary):
        return (node.op, shape(node.left), shape(node.right))
    if isinstance(node, n.Unary):
        return (node.op, shape(node.operand))
    if isinstance(node, n.Conditional):
        return ("?", shape(node.condition), shape(node.then), shape(node.otherwise))
    if isinstance(node, n.Number):
        return node.value
    if isinstance(node, (n.Variable, n.System)):
        return node.name
    if isinstance(node, n.Call):
        return (node.name, *map(shape, node.args))
    return type(node).__name__


@pytest.mark.parametrize(("text", "expected"), [
    ("a + b * c", ("+", "a", ("*", "b", "c"))),
    ("a - b - c", ("-", ("-", "a", "b"), "c")),
    ("a / b * c", ("*", ("/", "a", "b"), "c")),
    ("-a * b", ("*", ("-", "a"), "b")),
    ("!a && b", ("&&", ("!", "a"), "b")),
    ("a || b && c", ("||", "a", ("&&", "b", "c"))),
    ("a == b < c", ("==", "a", ("<", "b", "c"))),
    ("a + 1 >= b && c != 2", ("&&", (">=", ("+", "a", 1.0), "b"), ("!=", "c", 2.0))),
    ("a ? b : c ? d : e", ("?", "a", "b", ("?", "c", "d", "e"))),
    ("a || b ? 1 : 2", ("?", ("||", "a", "b"), 1.0, 2.0)),
    ("(a + b) * c", ("*", ("+", "a", "b"), "c")),
    ("--a", ("-", ("-", "a"))),
    ("max(a, b + 1)", ("max", "a", ("+", "b", 1.0))),
])
def test_precedence(text: str, expected: object) -> None:
    assert shape(only(f"x = {text};")) == expected


def test_statements_separators_and_comments() -> None:
    formula = parse("// first\n$a = 1; b = 2\nc = a\n  + b\n\n;; $TargetDedicatedNodes = c // last, no ';'")
    names = [s.name for s in formula.statements if isinstance(s, n.Assign)]
    assert names == ["$a", "b", "c", "$TargetDedicatedNodes"]
    assert shape(formula.statements[2].value) == ("+", "a", "b")


def test_names_resolve() -> None:
    formula = parse("$x = TimeInterval_Minute; y = $CPUPercent.GetSample(1); $TargetDedicated = 1; "
                    "$targetlowprioritynodes = 2; z = time().hour; stop()")
    interval, method, alias, folded, field, stop = formula.statements
    assert isinstance(interval.value, n.Interval) and interval.value.ticks == 600_000_000
    assert isinstance(method.value, n.Method) and method.value.variable == "$CPUPercent"
    assert (alias.name, alias.system, alias.alias) == ("$TargetDedicatedNodes", True, True)
    assert (folded.name, folded.system, folded.alias) == ("$TargetLowPriorityNodes", True, False)
    assert isinstance(field.value, n.Field) and field.value.name == "hour"
    assert isinstance(stop, n.Expression) and isinstance(stop.value, n.Call)


def test_method_position_is_its_parenthesis() -> None:
    method = only("samplevecavg = avg($PendingTasks.GetSample(sli, 70))").args[0]
    assert (method.line, method.column) == (1, 43)


def test_user_variables_keep_their_spelling() -> None:
    formula = parse("$x = 1; x = 2; X = 3")
    assert [s.name for s in formula.statements] == ["$x", "x", "X"]
    assert not any(s.system for s in formula.statements)


def test_formula_is_immutable_and_keeps_text() -> None:
    formula = parse("a = 1")
    assert formula.text == "a = 1"
    with pytest.raises(AttributeError):
        formula.text = "b"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "line", "column", "detail"), [
    ("a = 1 b = 2", 1, 7, "expected ';' or a line break after the statement but found 'b'"),
    ("a = ", 1, 5, "expected an expression but found the end of the formula"),
    ("a = (1 + 2", 1, 11, "expected ')' but found the end of the formula"),
    ("a = 1;\nb = max(1 2)", 2, 11, "expected ',' or ')' but found '2'"),
    ("a = {1, 2", 1, 10, "expected ',' or '}' but found the end of the formula"),
    ("a = b ? 1", 1, 10, "expected ':' of the conditional operator but found the end of the formula"),
    ("a = 1 +\n\n  * 2", 3, 3, "expected an expression but found '*'"),
    ("", 1, 1, "expected a statement but found the end of the formula"),
    ("  // only a comment\n;", 2, 2, "expected a statement but found the end of the formula"),
    ("a = foo(1)", 1, 5, "unknown function 'foo'"),
    ("a = $CPUPercent.GetSamples(1)", 1, 17, ("unknown sample method 'GetSamples' (methods are GetSample, "
                                              "GetSamplePercent, GetSamplePeriod, Count, HistoryBeginTime)")),
    ("a = time().hours", 1, 12, ("unknown timestamp member 'hours' "
                                 "(members are year, month, day, weekday, hour, minute, second)")),
    ("a = b.GetSample(1)", 1, 7, "GetSample() applies only to a sampled service-defined variable"),
    ("a = $TargetDedicatedNodes.Count()", 1, 27, "Count() applies only to a sampled service-defined variable"),
    ("a = $CPUPercent.Count(1)", 1, 22, "Count() takes 0 arguments, not 1"),
    ("a = $CPUPercent.GetSample()", 1, 26, "GetSample() takes 1 to 3 arguments, not 0"),
    ("a = val({1})", 1, 5, "val() takes 2 arguments, not 1"),
    ("a = rand(1)", 1, 5, "rand() takes 0 arguments, not 1"),
    ("a = time(1, 2)", 1, 5, "time() takes 0 to 1 arguments, not 2"),
    ("a = lg()", 1, 5, "lg() takes at least 1 argument, not 0"),
    ("a = 1;\n  $CPUPercent = 5", 2, 3, "$CPUPercent is a read-only service-defined variable"),
    ("$CurrentDedicatedNodes = 5", 1, 1, "$CurrentDedicatedNodes is a read-only service-defined variable"),
    ("$currentdedicated = 5", 1, 1, "$CurrentDedicated is a read-only service-defined variable"),
    ("TimeInterval_Hour = 5", 1, 1, "TimeInterval_Hour is a constant"),
    ("a = $x.", 1, 8, "expected a method or member name but found the end of the formula"),
    ("a = = 1", 1, 5, "expected an expression but found '='"),
])
def test_syntax_errors(text: str, line: int, column: int, detail: str) -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(text)
    e = caught.value
    assert (e.code, e.line, e.column, e.detail) == (SYNTAX_ERROR, line, column, detail)
    assert e.message == f"Line {line}, Col {column}: {detail}" == str(e)
    assert e.summary == "The specified auto-scaling formula has a syntax error."
    assert e.values == (("Message", e.message),)


def test_length_limit() -> None:
    assert MAX_FORMULA_LENGTH == 8192
    fits = "a = 1;" + " " * (MAX_FORMULA_LENGTH - 6)
    parse(fits)
    check_length(fits)
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(fits + " ")
    assert caught.value.code == TOO_LONG == "AutoScalingFormulaTooLong"
    assert caught.value.summary == "The specified auto-scaling formula exceeds lengths limit."
    assert "8193 characters; at most 8192" in caught.value.message


def test_statement_limit() -> None:
    parse(";".join(f"v{i} = {i}" for i in range(100)))
    with pytest.raises(FormulaSyntaxError) as caught:
        parse("\n".join(f"v{i} = {i}" for i in range(101)))
    assert (caught.value.code, caught.value.line, caught.value.column) == (TOO_LONG, 101, 1)


def test_deep_nesting_is_a_syntax_error() -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse("a = " + "(" * 2000 + "1" + ")" * 2000)
    assert "nested too deeply" in caught.value.message
