"""The Azure Batch autoscale formula language: parse a formula, evaluate it against a pool.

Pure: no I/O and nothing of openbatch outside this package. The language is the one
of "Create a formula to automatically scale compute nodes in a Batch pool"
(learn.microsoft.com/azure/batch/batch-automatic-scaling)::

    formula = parse("$TargetDedicatedNodes = min(10, avg($PendingTasks.GetSample(TimeInterval_Minute * 5)));")
    run = evaluate(formula, Inputs(now=..., sample_interval=timedelta(seconds=30), ...))
    run.target_dedicated, run.results(), run.error

Where the docs are silent, this package chooses (and its tests pin down):

* a line break ends a statement when the expression before it is complete;
* service-defined variable names ignore case; user variables ``x`` and ``$x`` differ;
* only the operand types of the docs' operations table are allowed (``2 * {1}`` is an error);
* ``weekday`` is 1 for Monday ... 6 for Saturday and 0 for Sunday;
* a time frame holds the samples with ``start < time <= end`` and expects frame / interval samples;
* targets are rounded down and at least 0; a NaN or infinite target is an evaluation error;
* ``autoScaleRun.results`` lists the two targets and the deallocation option, then the user
  variables in ordinal order; doubles have 6 significant digits, vectors read ``[1,2]``,
  timestamps ``2016-10-14T18:36:43.282Z`` and timeintervals ``00:15:00`` (.NET TimeSpan).
"""

from .errors import (
    EVALUATION_ERROR,
    INSUFFICIENT_SAMPLE_DATA,
    MAX_FORMULA_LENGTH,
    MAX_STATEMENTS,
    SYNTAX_ERROR,
    TOO_LONG,
    FormulaSyntaxError,
    check_length,
)
from .evaluate import Evaluation, EvaluationError, Inputs, evaluate
from .parser import Formula, parse
from .samples import Sample

__all__ = [
    "EVALUATION_ERROR", "INSUFFICIENT_SAMPLE_DATA", "MAX_FORMULA_LENGTH", "MAX_STATEMENTS", "SYNTAX_ERROR",
    "TOO_LONG", "Evaluation", "EvaluationError", "Formula", "FormulaSyntaxError", "Inputs", "Sample",
    "check_length", "evaluate", "parse",
]
