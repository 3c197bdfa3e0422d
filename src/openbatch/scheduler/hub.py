"""The server's side of agent connections: per-agent command queues and long-poll wakeups.

Services (running in worker threads) push commands after their transaction commits;
the agent's long-poll request (on the event loop) takes them. Several servers on one
database keep the queues there instead (cluster/channel.py): ``fetch`` takes them and a
notification :meth:`signal`\\ s the waiting long-poll. Also notes which agents called,
for the presence each server writes down (cluster/presence.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Awaitable, Callable, Iterable

from ..protocol import Command


class AgentHub:
    def __init__(self, fetch: Callable[[str], Awaitable[list[Command]]] | None = None) -> None:
        self._lock = threading.Lock()
        self._fetch = fetch
        self._queues: dict[str, list[Command]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._seen: set[str] = set()
        #: The latest usage each agent reported since the last drain (written down once a second).
        self._usage: dict[str, dict[str, float]] = {}
        #: (fetch) Agents whose queue in the database may hold something: signalled since their
        #: last fetch, or never fetched here.
        self._dirty: set[str] = set()
        self._polling: dict[str, int] = {}
        self._greeted: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def push(self, agent_id: str, commands: Iterable[Command]) -> None:
        """Queue commands for an agent and wake its long-poll (thread-safe)."""
        commands = list(commands)
        if not commands:
            return
        with self._lock:
            self._queues.setdefault(agent_id, []).extend(commands)
        self.signal(agent_id)

    def take_now(self, agent_id: str) -> list[Command]:
        """Thread-safe: the agent's queued commands (memory), taken without waiting."""
        with self._lock:
            return self._queues.pop(agent_id, [])

    def signal(self, agent_id: str) -> None:
        """Thread-safe: the agent may have commands (its long-poll, if it waits here, looks)."""
        self._dirty.add(agent_id)
        event = self._events.get(agent_id)
        if event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)

    def signal_all(self) -> None:
        """Thread-safe: every agent's queue is looked at again (notifications may have been missed)."""
        for agent_id in list(self._events):
            self.signal(agent_id)

    async def _pop(self, agent_id: str) -> list[Command]:
        if self._fetch is not None:
            if agent_id not in self._dirty:
                return []
            self._dirty.discard(agent_id)   # (before the fetch: a signal meanwhile makes it look again)
            try:
                return await self._fetch(agent_id)
            except BaseException:
                self._dirty.add(agent_id)   # not taken: the next look fetches again
                raise
        return self.take_now(agent_id)

    async def take(self, agent_id: str, wait: float) -> list[Command]:
        """The agent's pending commands, waiting up to ``wait`` seconds for some to arrive."""
        self.touch(agent_id)
        event = self._events.get(agent_id)
        if event is None:
            event = self._events[agent_id] = asyncio.Event()
            self._dirty.add(agent_id)   # what was queued before it called here
        event.clear()   # before looking: what arrives after the look sets it again
        pending = await self._pop(agent_id)
        if not pending and wait > 0:
            self._polling[agent_id] = self._polling.get(agent_id, 0) + 1
            deadline = time.monotonic() + wait
            try:
                # Another request of the agent (its event report) may take what woke us: wait on.
                while not pending and not self._closing and (left := deadline - time.monotonic()) > 0:
                    try:
                        await asyncio.wait_for(event.wait(), left)
                    except asyncio.TimeoutError:
                        pass
                    if self._events.get(agent_id) is not event:
                        return []  # forgotten meanwhile
                    event.clear()
                    pending = await self._pop(agent_id)
            finally:
                if agent_id in self._polling:
                    self._polling[agent_id] -= 1
        if self._events.get(agent_id) is event:
            self.touch(agent_id)
        return pending

    def first_contact(self, agent_id: str) -> bool:
        """True the first time an agent calls since this server started (then it reconciles)."""
        with self._lock:
            if agent_id in self._greeted:
                return False
            self._greeted.add(agent_id)
            return True

    def touch(self, agent_id: str) -> None:
        self._seen.add(agent_id)

    def note_usage(self, agent_id: str, usage: dict[str, float]) -> None:
        self._usage[agent_id] = usage

    def drain_usage(self) -> dict[str, dict[str, float]]:
        """The agents' latest reported usage since the last drain."""
        usage, self._usage = self._usage, {}
        return usage

    def drain_seen(self) -> list[str]:
        """The agents that called since the last drain, or are waiting in a long-poll now."""
        seen, self._seen = self._seen, set()
        return sorted(seen | {agent for agent, count in list(self._polling.items()) if count})

    def forget(self, agent_id: str) -> None:
        """The agent is lost or gone: its queued commands are dropped, and should it call again it
        reconciles as on first contact."""
        with self._lock:
            self._queues.pop(agent_id, None)
            event = self._events.pop(agent_id, None)
            self._seen.discard(agent_id)
            self._usage.pop(agent_id, None)
            self._dirty.discard(agent_id)
            self._polling.pop(agent_id, None)
            self._greeted.discard(agent_id)
        if event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)  # a long-poll still waiting ends (empty)

    @property
    def closing(self) -> bool:
        """The server stops (:meth:`close` was called)."""
        return self._closing

    def close(self) -> None:
        """The server stops: every waiting long-poll answers now (with no commands)."""
        self._closing = True
        with self._lock:
            events = list(self._events.values())
        for event in events:
            event.set()
