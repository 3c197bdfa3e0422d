"""Which agents still call, whichever server they call: each server writes down the agents it
heard from (or holds a long-poll of) once a second (``agents.seen_at``, with the host usage they
reported for autoscale samples); the leader reads who has been silent for the node-lost timeout.

A new leader gives every agent that long from its election first: an agent of a server that
just died needs a moment to find another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any, Callable

from ..scheduler.hub import AgentHub
from ..background import cancel_and_wait
from ..services import Services

log = logging.getLogger("openbatch.cluster")

#: How often a server writes down the agents it heard from.
FLUSH_SECONDS = 1.0


class Presence:
    def __init__(self, services: Services, hub: AgentHub, lost_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.clock = clock
        self.hub = hub
        self.lost_after = lost_after
        self._leading_since: float | None = None
        #: Silent agents already told, with the last call they were silent since.
        self._reported: dict[str, Any] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="openbatch-presence")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def lead(self) -> None:
        """This server leads from now on."""
        self._leading_since = self.clock()

    async def flush(self) -> None:
        seen = self.hub.drain_seen()
        usage = self.hub.drain_usage()
        if seen or usage:
            await asyncio.to_thread(self.services.agents.seen, seen, usage)

    async def silent(self) -> list[str]:
        """Agents silent for the node-lost timeout, each told once per silence (again only after it
        called meanwhile); none in a leader's first timeout."""
        if self._leading_since is None or self.clock() - self._leading_since < self.lost_after:
            return []
        await self.flush()
        cutoff = self.services.ctx.now() - timedelta(seconds=self.lost_after)
        silent = dict(await asyncio.to_thread(self.services.agents.silent_since, cutoff))
        fresh = [agent for agent, last in silent.items() if self._reported.get(agent) != last]
        self._reported = {agent: last for agent, last in silent.items()}
        return fresh

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the database may be back next time
                log.exception("writing down which agents called failed")
