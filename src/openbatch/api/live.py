"""The dashboard's live feed: server-sent events carrying each account's overview, every tick.

However many dashboards of an account are open, its overview is read once per tick (from counters:
the same cost at a million tasks), and only while one is open. Each event also carries the rates
since the previous tick (tasks completed and started per second). The feed ends every stream when
the server stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Callable

log = logging.getLogger("openbatch.dashboard")

#: Seconds between two overviews of an account.
TICK_SECONDS = 1.0
#: A stream sends at least this often (a comment when nothing else), so proxies keep it open.
KEEPALIVE_SECONDS = 15.0


class LiveFeed:
    def __init__(self, read: Callable[[str], Any], tick: float = TICK_SECONDS) -> None:
        """``read(account)``: the account's overview as JSON (called on a worker thread)."""
        self.read = read
        self.tick = tick
        self._subscribers: dict[str, set[asyncio.Queue[str | None]]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def close(self) -> None:
        """The server stops: every stream ends now."""
        self._closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)
        for reader in self._readers.values():
            reader.cancel()

    async def stream(self, account: str, until: float | None = None) -> AsyncIterator[str]:
        """The account's overviews as server-sent events, until the server stops or (``until``, a Unix
        time) the session that opened it expires."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=4)
        self._subscribers.setdefault(account, set()).add(queue)
        if account not in self._readers and not self._closed:
            self._readers[account] = asyncio.create_task(self._read(account), name=f"openbatch-live-{account}")
        try:
            yield "retry: 2000\n\n"
            while not self._closed and (until is None or time.time() < until):
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event is None:
                    return
                yield event
        finally:
            subscribers = self._subscribers.get(account, set())
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(account, None)

    async def _read(self, account: str) -> None:
        """Read the account's overview every tick while anyone watches it; hand it to every stream."""
        previous: tuple[float, dict[str, int]] | None = None
        try:
            while self._subscribers.get(account) and not self._closed:
                started = time.monotonic()
                try:
                    overview = await asyncio.to_thread(self.read, account)
                except Exception:  # noqa: BLE001 - the store may be away a moment: the next tick tries again
                    log.warning("the live overview of account %s could not be read", account, exc_info=True)
                    await asyncio.sleep(self.tick)
                    continue
                totals = _totals(overview)
                if previous is not None:
                    seconds = max(1e-3, started - previous[0])
                    overview["rates"] = {name: round(max(0, totals[name] - previous[1][name]) / seconds, 2)
                                         for name in totals}
                previous = (started, totals)
                event = f"event: overview\ndata: {json.dumps(overview, separators=(',', ':'))}\n\n"
                for queue in list(self._subscribers.get(account, ())):
                    if queue.full():   # a slow reader misses an overview, never holds up the others
                        queue.get_nowait()
                    queue.put_nowait(event)
                await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))
        finally:
            self._readers.pop(account, None)


def _totals(overview: dict[str, Any]) -> dict[str, int]:
    """Tasks completed, and tasks that left the queue (started), so far: their change per second is a rate."""
    tasks = overview["tasks"]
    return {"completed": tasks["completed"], "started": tasks["running"] + tasks["completed"]}
