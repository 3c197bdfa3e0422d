"""Evaluation: targets and their defaults, aliases, rounding, the deallocation option,
results formatting and order, laziness, and errors reported rather than raised."""

import pytest

from openbatch.domain.autoscale import EVALUATION_ERROR, Evaluation, evaluate, parse
from tests.unit.domain.autoscale.support import error, inputs, run, value

DEFAULTS = "$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
OPTIONS = "$NodeDeallocationOption must be one of requeue, terminate, taskcompletion, retaineddata"


def test_unset_targets_keep_the_current_targets() -> None:
    evaluation = run("a = 1", dedicated=3, low_priority=2)
    assert (evaluation.target_dedicated, evaluation.target_low_priority) == (3, 2)
    assert evaluation.deallocation_option == "requeue"
    assert evaluation.results() == ("$TargetDedicatedNodes=3;$TargetLowPriorityNodes=2;"
                                    "$NodeDeallocationOption=requeue;a=1")
    assert evaluation.error is None


def test_reading_a_target_before_setting_it_gives_the_current_target() -> None:
    evaluation = run("half = $TargetDedicatedNodes / 2; $TargetLowPriorityNodes = $TargetLowPriorityNodes + 1",
                     dedicated=5, low_priority=1)
    assert dict(evaluation.variables)["half"] == "2.5"
    assert evaluation.target_low_priority == 2


@pytest.mark.parametrize(("text", "dedicated", "low"), [
    ("$TargetDedicated = 4", 4, 0),
    ("$TargetLowPriority = 6", 0, 6),
    ("$TargetDedicatedNodes = 2; $TargetDedicated = 4", 2, 0),  # the full name takes precedence
    ("$TargetDedicated = 4; $TargetDedicatedNodes = 2", 2, 0),
    ("$TargetLowPriority = 1; $TargetLowPriorityNodes = 8; $TargetLowPriority = 3", 0, 8),
    ("$targetdedicatednodes = 7", 7, 0),  # service variable names ignore case
])
def test_aliases(text: str, dedicated: int, low: int) -> None:
    evaluation = run(text)
    assert (evaluation.target_dedicated, evaluation.target_low_priority) == (dedicated, low)


def test_reading_aliases() -> None:
    assert value("$TargetDedicated", dedicated=3) == "3"
    evaluation = run("$TargetDedicated = 4; $TargetDedicatedNodes = 2; a = $TargetDedicated; b = $TargetDedicatedNodes")
    assert (dict(evaluation.variables)["a"], dict(evaluation.variables)["b"]) == ("4", "2")


@pytest.mark.parametrize(("expression", "target", "shown"), [
    ("5.9", 5, "5.9"), ("0.5", 0, "0.5"), ("-3", 0, "-3"), ("1e12", 2**31 - 1, "1e+12"), ("7", 7, "7"),
])
def test_targets_are_whole_non_negative_counts(expression: str, target: int, shown: str) -> None:
    evaluation = run(f"$TargetDedicatedNodes = {expression}")
    assert evaluation.target_dedicated == target
    assert evaluation.results().startswith(f"$TargetDedicatedNodes={shown};")


@pytest.mark.parametrize(("text", "detail"), [
    ("$TargetDedicatedNodes = 0 / 0", "Line 1, Col 1: $TargetDedicatedNodes is not a finite number (nan)"),
    ("a = 1;\n  $TargetLowPriorityNodes = 1 / 0", "Line 2, Col 3: $TargetLowPriorityNodes is not a finite number (inf)"),
    ("$TargetDedicatedNodes = {1}", "Line 1, Col 1: $TargetDedicatedNodes must be a double, not a doubleVec"),
    ('$TargetLowPriority = "2"', "Line 1, Col 1: $TargetLowPriorityNodes must be a double, not a string"),
    ("$NodeDeallocationOption = 1", f"Line 1, Col 1: {OPTIONS}, not a double"),
    ('$NodeDeallocationOption = "later"', f"Line 1, Col 1: {OPTIONS}, not later"),
    ("a = b + 1", "Line 1, Col 5: variable b is used before it is assigned"),
    ("a = 1 ? $CPUPercent : 2", "Line 1, Col 9: $CPUPercent is a set of samples: use $CPUPercent.GetSample(...) to read its values"),
    ("a = {1} ? 1 : 2", "Line 1, Col 5: the condition of '?:' must be a double, not a doubleVec"),
    ("a = (1 + 2).hour", "Line 1, Col 13: '.hour' is a member of a timestamp, not of a double"),
    ("a = {1, time()}", "Line 1, Col 5: a doubleVec literal takes doubles and doubleVecs, not a timestamp"),
    ("a = 1 && {1}", "Line 1, Col 7: operator '&&' is not defined for double and doubleVec"),
    ('a = "x" || 1', "Line 1, Col 9: operator '||' is not defined for string and double"),
    ("a = 2 * (1 + TimeInterval_Second)", "Line 1, Col 12: operator '+' is not defined for double and timeinterval"),
    ("a = time() + TimeInterval_Year * 1e4", "Line 1, Col 12: the timestamp is out of range"),
    ("a = TimeInterval_Year * 1e9", "Line 1, Col 23: the timeinterval is out of range"),
])
def test_evaluation_errors(text: str, detail: str) -> None:
    code, message = error(text)
    assert code == EVALUATION_ERROR
    assert message == detail


def test_errors_keep_the_values_set_so_far() -> None:
    evaluation = run("$TargetDedicatedNodes = 4; a = 2; b = c", dedicated=1)
    assert evaluation.error is not None
    assert evaluation.error.message == "Autoscale evaluation failed due to an error in the formula"
    assert evaluation.results() == f"$TargetDedicatedNodes=4;{DEFAULTS};a=2"
    assert evaluation.deallocation_option is None


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_deallocation_options(option: str) -> None:
    assert run(f"$NodeDeallocationOption = {option}").deallocation_option == option
    assert run(f'$NodeDeallocationOption = "{option.upper()}"').deallocation_option == option


def test_deallocation_option_reads_and_compares() -> None:
    evaluation = run("a = $NodeDeallocationOption; $NodeDeallocationOption = terminate; "
                     "b = $NodeDeallocationOption == terminate; c = requeue")
    assert dict(evaluation.variables) == {
        "$TargetDedicatedNodes": "0", "$TargetLowPriorityNodes": "0", "$NodeDeallocationOption": "terminate",
        "a": "requeue", "b": "1", "c": "requeue"}


def test_a_user_variable_may_shadow_an_option_word() -> None:
    assert value("requeue") == "requeue"
    evaluation = run("requeue = 5; a = requeue")
    assert dict(evaluation.variables)["a"] == "5"


def test_results_order_and_formats() -> None:
    evaluation = run('zeta = 1; Alpha = {1, 2.5}; $beta = TimeInterval_Minute * 15; gamma = "text"; '
                     "delta = time(); _u = 1 / 3; $TargetDedicatedNodes = 2", low_priority=4)
    assert evaluation.results() == (
        "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=4;$NodeDeallocationOption=requeue;"
        "$beta=00:15:00;Alpha=[1,2.5];_u=0.333333;delta=2024-03-04T10:30:00.000Z;gamma=text;zeta=1")
    assert evaluation.variables[:3] == (("$TargetDedicatedNodes", "2"), ("$TargetLowPriorityNodes", "4"),
                                        ("$NodeDeallocationOption", "requeue"))


def test_dollar_and_bare_names_are_distinct_variables() -> None:
    evaluation = run("$x = 1; x = 2; y = $x + x")
    assert {"$x": "1", "x": "2", "y": "3"}.items() <= dict(evaluation.variables).items()


def test_reassignment_keeps_the_last_value() -> None:
    assert dict(run("a = 1; a = a + 1; a = a * 10").variables)["a"] == "20"


def test_conditional_and_logic_are_lazy() -> None:
    assert value("1 ? 2 : undefined") == "2"
    assert value("0 ? undefined : 3") == "3"
    assert value("0 && undefined") == "0"
    assert value("1 || undefined") == "1"
    assert value("1 && 2") == "1"
    assert value("0 || 0") == "0"
    assert value("(0 / 0) ? 1 : 2") == "1"  # NaN is nonzero


def test_types_flow_through_variables() -> None:
    assert value("TimeInterval_Hour * 2 > TimeInterval_Minute * 90") == "1"
    assert value('"abc" < "abd"') == "1"
    assert value("time() - time(\"2024-03-04T10:00:00Z\")") == "00:30:00"
    assert value("(time() + TimeInterval_Day).weekday") == "2"
    assert value("-TimeInterval_Second") == "-00:00:01"
    assert value("{1, 2} * 2 + {1, 1}") == "[3,5]"
    assert value("{}") == "[]"
    assert value("{{1, 2}, 3}") == "[1,2,3]"


def test_a_formula_is_reusable() -> None:
    formula = parse("a = rand(); $TargetDedicatedNodes = $CurrentDedicatedNodes + 1")
    first = evaluate(formula, inputs(scalars={"$CurrentDedicatedNodes": 2}, seed=1))
    second = evaluate(formula, inputs(scalars={"$CurrentDedicatedNodes": 5}, seed=1))
    assert (first.target_dedicated, second.target_dedicated) == (3, 6)
    assert dict(first.variables)["a"] == dict(second.variables)["a"]
    assert isinstance(first, Evaluation)


def test_a_very_long_chain_is_reported_not_raised() -> None:
    evaluation = run("a = " + "+".join(["1"] * 3000))
    assert evaluation.error is not None and "nested too deeply" in evaluation.error.values[0][1]


def test_random_formulas_never_raise_past_the_interface() -> None:
    """Parse raises only FormulaSyntaxError; evaluate never raises."""
    import random

    from openbatch.domain.autoscale import FormulaSyntaxError
    from tests.unit.domain.autoscale.support import constant

    pieces = ["a", "$b", "=", "1", "0", "2.5", "-", "+", "*", "/", "<", "==", "&&", "||", "!", "?", ":", "(", ")",
              "{", "}", ",", ";", "\n", '"s"', "time()", "TimeInterval_Minute", "$CPUPercent.GetSample(",
              "$PendingTasks.GetSamplePercent(", "avg(", "val(", "lg(", "percentile(", ".hour", "stop()", "rand()",
              "$TargetDedicatedNodes", "$NodeDeallocationOption", "taskcompletion", "$CurrentDedicatedNodes",
              "1e308", "TimeInterval_Year"]
    generator = random.Random(2024)
    parsed = 0
    for _ in range(3000):
        start = "x = " if generator.random() < 0.7 else ""
        text = start + " ".join(generator.choice(pieces) for _ in range(generator.randint(1, 10)))
        try:
            formula = parse(text)
        except FormulaSyntaxError:
            continue
        parsed += 1
        evaluate(formula, inputs(metrics={"$CPUPercent": constant(1, 5)}))
    assert parsed > 100
