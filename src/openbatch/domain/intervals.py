"""The minimum intervals the API documents, and how often the server samples pool metrics.

Azure refuses a job schedule recurrenceInterval or startWindow under a minute and an
autoScaleEvaluationInterval under 5 minutes, and records autoscale metrics every 30 seconds
(its docs say samples may come later than that). Those stay the API's rules; a server setting
may lower them for local development and tests (``openbatch serve --min-interval``,
``--sample-interval``), where waiting minutes for a schedule or a formula helps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Intervals:
    #: The least recurrenceInterval and startWindow of a job schedule.
    schedule_minimum: timedelta = timedelta(minutes=1)
    #: The least autoScaleEvaluationInterval of a pool.
    autoscale_minimum: timedelta = timedelta(minutes=5)
    #: How often the server records a pool's metrics for its autoscale formula.
    sample_period: timedelta = timedelta(seconds=30)

    @classmethod
    def lowered(cls, minimum: timedelta | None = None, sample_period: timedelta | None = None) -> "Intervals":
        """Azure's intervals, with the minimums no longer than ``minimum`` and samples every ``sample_period``."""
        base = cls()
        low = minimum if minimum is not None else base.autoscale_minimum
        return cls(min(base.schedule_minimum, low), min(base.autoscale_minimum, low),
                   sample_period if sample_period is not None else base.sample_period)
