"""The server's side of agent connections: per-agent command queues and long-poll wakeups.

Services (running in worker threads) push commands after their transaction commits;
the agent's long-poll request (on the event loop) takes them. Also remembers when each
agent last called, so a silent agent is noticed within seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Iterable

from ..protocol import Command


class AgentHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, list[Command]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._last_seen: dict[str, float] = {}
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
            event = self._events.get(agent_id)
        if event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)

    async def take(self, agent_id: str, wait: float) -> list[Command]:
        """The agent's pending commands, waiting up to ``wait`` seconds for some to arrive."""
        self.touch(agent_id)
        with self._lock:
            event = self._events.setdefault(agent_id, asyncio.Event())
            pending = self._queues.pop(agent_id, [])
            if not pending:
                event.clear()
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
                    with self._lock:
                        if self._events.get(agent_id) is not event:
                            return []  # forgotten meanwhile
                        pending = self._queues.pop(agent_id, [])
                        event.clear()
            finally:
                if agent_id in self._polling:
                    self._polling[agent_id] -= 1
        if self._events.get(agent_id) is event:
            self.touch(agent_id)
        return pending

    def expect(self, agent_ids: list[str]) -> None:
        """Agents known from before a restart: lost unless they call within the usual time."""
        for agent_id in agent_ids:
            self._last_seen.setdefault(agent_id, time.monotonic())

    def first_contact(self, agent_id: str) -> bool:
        """True the first time an agent calls since this server started (then it reconciles)."""
        with self._lock:
            if agent_id in self._greeted:
                return False
            self._greeted.add(agent_id)
            return True

    def touch(self, agent_id: str) -> None:
        self._last_seen[agent_id] = time.monotonic()

    def silent(self, after: float) -> list[str]:
        """Agents that have not called for ``after`` seconds (one waiting in a long-poll is calling)."""
        cutoff = time.monotonic() - after
        return [agent for agent, seen in list(self._last_seen.items())
                if seen < cutoff and not self._polling.get(agent)]

    def forget(self, agent_id: str) -> None:
        """The agent is lost or gone: its queued commands are dropped, and should it call again it
        reconciles as on first contact."""
        with self._lock:
            self._queues.pop(agent_id, None)
            event = self._events.pop(agent_id, None)
            self._last_seen.pop(agent_id, None)
            self._polling.pop(agent_id, None)
            self._greeted.discard(agent_id)
        if event is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(event.set)  # a long-poll still waiting ends (empty)

    def close(self) -> None:
        """The server stops: every waiting long-poll answers now (with no commands)."""
        self._closing = True
        with self._lock:
            events = list(self._events.values())
        for event in events:
            event.set()
