"""Work the clock starts: job schedules whose run time or start window has come, autoscale
evaluations whose interval has passed, the samples of pool metrics formulas read, and the
preemption of low-priority nodes (at the server's rate) and their return.

Runs on the server's event loop, the database work in worker threads, on the server that leads
(every server checks again under the schedule's row lock, so one more looking would only cost
time). It sleeps until the earliest time a schedule is due, but never longer than
``SWEEP_SECONDS``: another server, or a client on one, may have added an earlier one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import anyio.to_thread

from ..background import cancel_and_wait
from ..domain import clock
from ..services import Services

log = logging.getLogger("openbatch.timers")

SWEEP_SECONDS = 1.0


class Timers:
    def __init__(self, services: Services, leading: Callable[[], bool] = lambda: True) -> None:
        self.services = services
        self.leading = leading
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Thread-safe: something may be due sooner than the loop thinks."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="openbatch-timers")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            wait = SWEEP_SECONDS
            if self.leading():
                for what, run_due in (("the job schedules", self.services.job_schedules.run_due),
                                      ("autoscale", self.services.autoscale.run_due),
                                      ("preemption", self.services.preemption.run_due)):
                    try:
                        due = await anyio.to_thread.run_sync(run_due)
                        if due is not None:
                            wait = min(wait, max(0.0, (due - clock.utcnow()).total_seconds()))
                    except Exception:  # noqa: BLE001 - the loop must survive any single failed pass
                        log.exception("running %s failed", what)
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
