"""Presence: silent agents are told once per node-lost timeout, and none in a new leader's first timeout."""

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

from openbatch.cluster.presence import Presence
from openbatch.runtime import join_token
from openbatch.scheduler.hub import AgentHub


class Agents:
    def __init__(self) -> None:
        self.silent: list[tuple[str, int]] = []
        self.seen_calls: list[list[str]] = []

    def seen(self, ids: list[str], usage: dict | None = None) -> None:
        self.seen_calls.append(list(ids))

    def silent_since(self, cutoff: datetime) -> list[tuple[str, int]]:
        return list(self.silent)


def make(clock: list[float] | None = None) -> tuple[Presence, Agents]:
    agents = Agents()
    services = SimpleNamespace(agents=agents, ctx=SimpleNamespace(now=lambda: datetime.now(timezone.utc)))
    now = clock or [0.0]
    return Presence(services, AgentHub(), 10.0, clock=lambda: now[0]), agents  # type: ignore[arg-type]


def test_nobody_is_silent_before_a_leader_has_led_for_the_timeout() -> None:
    clock = [100.0]
    presence, agents = make(clock)
    agents.silent = [("a", 1)]
    assert asyncio.run(presence.silent()) == []   # not leading
    presence.lead()
    clock[0] += 9
    assert asyncio.run(presence.silent()) == []
    clock[0] += 2
    assert asyncio.run(presence.silent()) == ["a"]
    clock[0] += 30
    assert asyncio.run(presence.silent()) == []   # told already: once per silence
    agents.silent = []                            # it called again ...
    assert asyncio.run(presence.silent()) == []
    agents.silent = [("a", 2)]                    # ... and went silent again
    assert asyncio.run(presence.silent()) == ["a"]


def test_the_agents_heard_from_are_written_down() -> None:
    presence, agents = make()
    presence.hub.touch("b")
    presence.hub.touch("a")
    asyncio.run(presence.flush())
    asyncio.run(presence.flush())   # nothing new: no write
    assert agents.seen_calls == [["a", "b"]]


def test_the_join_token_is_the_same_on_every_server_of_the_accounts() -> None:
    assert join_token({"a": b"k1", "b": b"k2"}) == join_token({"b": b"k2", "a": b"k1"})
    assert join_token({"a": b"k1"}) != join_token({"a": b"k2"})
