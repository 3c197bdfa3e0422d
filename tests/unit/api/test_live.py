"""The live feed: one read per account and tick whoever watches, rates between ticks, streams that end."""

from __future__ import annotations

import asyncio
import json

from openbatch.api.live import LiveFeed


def _overview(completed: int) -> dict:
    return {"tasks": {"active": 0, "running": 1, "completed": completed}, "pools": [], "jobs": {}, "nodes": {}}


def test_watchers_of_an_account_share_one_read_per_tick_and_the_feed_stops_with_them() -> None:
    reads: list[str] = []
    done = {"a": 0}

    def read(account: str) -> dict:
        reads.append(account)
        done[account] += 10
        return _overview(done[account])

    async def main() -> None:
        feed = LiveFeed(read, tick=0.05)
        first, second = feed.stream("a"), feed.stream("a")
        assert await first.__anext__() == "retry: 2000\n\n"
        assert await second.__anext__() == "retry: 2000\n\n"
        events = [await first.__anext__() for _ in range(3)]
        await second.__anext__()
        payloads = [json.loads(event.split("data: ", 1)[1]) for event in events]
        assert all(event.startswith("event: overview\n") for event in events)
        assert "rates" not in payloads[0] and payloads[2]["rates"]["completed"] > 0
        assert len(reads) <= 5, reads   # one per tick, not one per watcher
        await first.aclose()
        await second.aclose()
        await asyncio.sleep(0.2)
        settled = len(reads)
        await asyncio.sleep(0.2)
        assert len(reads) == settled, "nobody watches: nothing is read"
        third = feed.stream("a")
        await third.__anext__()
        await third.__anext__()
        feed.close()
        assert [event async for event in third] == []   # the server stops: the stream ends

    asyncio.run(main())


def test_a_failing_read_is_tried_again_at_the_next_tick() -> None:
    calls = {"n": 0}

    def read(account: str) -> dict:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("the store is away")
        return _overview(1)

    async def main() -> None:
        feed = LiveFeed(read, tick=0.02)
        stream = feed.stream("a")
        await stream.__anext__()
        event = await asyncio.wait_for(stream.__anext__(), 5)
        assert "overview" in event and calls["n"] >= 2
        feed.close()

    asyncio.run(main())
