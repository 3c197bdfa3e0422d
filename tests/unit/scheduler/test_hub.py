"""The agent hub: commands from memory (one server) or fetched from the database (several), long-polls
woken by a push or a signal, and the agents it heard from."""

import asyncio

from openbatch.protocol import Command, KillCommand
from openbatch.scheduler.hub import AgentHub


def test_a_long_poll_is_woken_by_a_push_from_another_thread() -> None:
    async def main() -> None:
        hub = AgentHub()
        hub.bind(asyncio.get_running_loop())
        waiting = asyncio.create_task(hub.take("a", 5))
        await asyncio.sleep(0.01)
        await asyncio.to_thread(hub.push, "a", [KillCommand(id="r1")])
        assert await asyncio.wait_for(waiting, 1) == [KillCommand(id="r1")]
        assert await hub.take("a", 0) == []

    asyncio.run(main())


def test_fetched_commands_are_looked_for_again_when_signalled() -> None:
    queued: list[Command] = []
    fetches = []

    async def fetch(agent_id: str) -> list[Command]:
        fetches.append(agent_id)
        taken, queued[:] = list(queued), []
        return taken

    async def main() -> None:
        hub = AgentHub(fetch=fetch)
        hub.bind(asyncio.get_running_loop())
        waiting = asyncio.create_task(hub.take("a", 5))
        await asyncio.sleep(0.01)
        hub.signal("a")     # nothing there yet: it waits on
        await asyncio.sleep(0.01)
        assert not waiting.done()
        queued.append(KillCommand(id="r2"))
        await asyncio.to_thread(hub.signal_all)
        assert await asyncio.wait_for(waiting, 1) == [KillCommand(id="r2")]
        assert fetches == ["a", "a", "a"]

    asyncio.run(main())


def test_the_agents_heard_from_include_those_waiting_in_a_long_poll() -> None:
    async def main() -> None:
        hub = AgentHub()
        hub.bind(asyncio.get_running_loop())
        hub.touch("b")
        waiting = asyncio.create_task(hub.take("a", 5))
        await asyncio.sleep(0.01)
        assert hub.drain_seen() == ["a", "b"]
        assert hub.drain_seen() == ["a"]    # still waiting
        hub.forget("a")
        assert await asyncio.wait_for(waiting, 1) == []
        assert hub.drain_seen() == []

    asyncio.run(main())
