"""The scheduling loop: wakes on events, places tasks, and watches for silent agents.

Runs on the server's event loop; the database work runs in worker threads. Woken by
:meth:`wake` (thread-safe) whenever something may have made a task placeable, and
every ``SWEEP_SECONDS`` regardless, to notice agents that stopped calling.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import anyio.to_thread

from ..background import cancel_and_wait
from ..services import Services
from .round import SchedulingRound

log = logging.getLogger("openbatch.scheduler")

SWEEP_SECONDS = 1.0


class Scheduler:
    def __init__(self, services: Services, silent: Callable[[], Awaitable[list[str]]],
                 on_silent: Callable[[str], Awaitable[None]]) -> None:
        self.services = services
        #: The agents that stopped calling (cluster/presence.py), and what to do about one (the
        #: runtime knows local from remote).
        self.silent = silent
        self.on_silent = on_silent
        self.round = SchedulingRound(services.ctx)
        services.ctx.schedule_in = self.round.schedule_pool_in   # exit reports run it for the slots they free
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Thread-safe: there may be something to place."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="openbatch-scheduler")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_SECONDS
                    await self._sweep()
                # Whatever changes during a round (a report, an add) wakes the loop again (the
                # event was cleared before it); a round that filled every free slot needs no second.
                while (await anyio.to_thread.run_sync(self.round.schedule)).again:
                    pass
            except Exception:  # noqa: BLE001 - the loop must survive any single failed round
                log.exception("scheduling round failed")

    async def _sweep(self) -> None:
        """Once a second: agents that went silent, jobs past their maxWallClockTime, expired task directories."""
        for agent_id in await self.silent():
            await self.on_silent(agent_id)
        await anyio.to_thread.run_sync(self.services.job_limits.expire_overdue)
        await anyio.to_thread.run_sync(self.services.retention.remove_expired)
