"""Errors of the autoscale formula language and the limits Azure documents.

A formula that cannot be parsed raises :class:`FormulaSyntaxError` (REST code
``AutoScalingFormulaSyntaxError``, or ``AutoScalingFormulaTooLong`` past the
documented limits). Evaluation never raises to the caller: :class:`EvalFailure`
is internal and becomes an ``autoScaleRun.error``.
"""

from __future__ import annotations

SYNTAX_ERROR = "AutoScalingFormulaSyntaxError"
TOO_LONG = "AutoScalingFormulaTooLong"
INSUFFICIENT_SAMPLE_DATA = "InsufficientSampleData"
EVALUATION_ERROR = "FormulaEvaluationError"

#: "The formula string cannot exceed 8 KB" (docs); the SDKs say 8192 characters.
MAX_FORMULA_LENGTH = 8192
#: "... can include up to 100 statements that are separated by semicolons" (docs).
MAX_STATEMENTS = 100

#: The user messages of the REST error catalogue, by code.
SUMMARIES = {
    SYNTAX_ERROR: "The specified auto-scaling formula has a syntax error.",
    TOO_LONG: "The specified auto-scaling formula exceeds lengths limit.",
    INSUFFICIENT_SAMPLE_DATA: "Autoscale evaluation failed due to insufficient sample data",
    EVALUATION_ERROR: "Autoscale evaluation failed due to an error in the formula",
}


def where(line: int, column: int, text: str) -> str:
    """The positioned detail Azure reports: ``Line 1, Col 37: ...``."""
    return f"Line {line}, Col {column}: {text}"


class FormulaSyntaxError(Exception):
    """A formula that cannot be parsed.

    ``message`` is the positioned detail (``Line 2, Col 5: expected ...``, 1-based);
    ``summary`` is the catalogue's user message for ``code``; ``values`` the error
    detail pairs (``Message``, the positioned detail) for the REST error body.
    """

    def __init__(self, line: int, column: int, detail: str, code: str = SYNTAX_ERROR) -> None:
        self.code = code
        self.line = line
        self.column = column
        self.detail = detail
        self.message = where(line, column, detail)
        self.summary = SUMMARIES[code]
        self.values: tuple[tuple[str, str], ...] = (("Message", self.message),)
        super().__init__(self.message)


def check_length(text: str) -> None:
    """Raise ``AutoScalingFormulaTooLong`` when ``text`` exceeds :data:`MAX_FORMULA_LENGTH`."""
    if len(text) > MAX_FORMULA_LENGTH:
        line = text.count("\n", 0, MAX_FORMULA_LENGTH) + 1
        column = MAX_FORMULA_LENGTH - (text.rfind("\n", 0, MAX_FORMULA_LENGTH) + 1) + 1
        raise FormulaSyntaxError(
            line, column, f"the formula has {len(text)} characters; at most {MAX_FORMULA_LENGTH} are allowed",
            TOO_LONG)


class Fault(Exception):
    """An evaluation error not yet tied to a position (raised by operators, functions, samples)."""

    def __init__(self, detail: str, code: str = EVALUATION_ERROR) -> None:
        self.detail = detail
        self.code = code
        super().__init__(detail)


class EvalFailure(Exception):
    """An evaluation error at a position of the formula (internal to the package)."""

    def __init__(self, line: int, column: int, detail: str, code: str = EVALUATION_ERROR) -> None:
        self.code = code
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(where(line, column, detail))


class Stop(Exception):
    """Raised by ``stop()``: evaluation ends with the values set so far."""
