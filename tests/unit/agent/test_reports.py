"""The agent's event reports: batched, at most REPORTS_IN_FLIGHT at once, every event delivered, retried; a
reserved run's start held back and left unsaid when its exit comes first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from openbatch.agent import reports
from openbatch.agent.http import Response, TransportError
from openbatch.agent.main import Agent, Node
from openbatch.protocol import Event


class ScriptedServer:
    """Takes event reports; each answer waits until the test releases it."""

    def __init__(self, fail_first: int = 0, *, released: bool = False) -> None:
        self.reports: list[list[dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        if released:  # answers at once
            self.release.set()
        self.fail_first = fail_first

    def url(self, path: str, params: Any = None) -> str:
        return "http://server" + path

    async def post(self, path: str, json: Any = None, **_: Any) -> Response:
        if self.fail_first:
            self.fail_first -= 1
            raise TransportError("connection refused")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        self.reports.append(msgspec.to_builtins(json)["events"])   # as the server would decode it
        return Response(200, b'{"commands": [{"type": "kill", "id": "nothing-runs-here"}]}')

    async def aclose(self) -> None:
        pass


def make_agent(tmp_path: Path, server: ScriptedServer) -> Agent:
    agent = Agent("http://server", "pool", join_token="token", root=tmp_path)
    agent.http = server  # type: ignore[assignment]
    return agent


def exited(run_id: str) -> Event:
    return Event(type="exited", id=run_id, exitCode=0)


@pytest.mark.parametrize("limit", [reports.REPORTS_IN_FLIGHT, 3])
def test_reports_overlap_up_to_the_limit_and_lose_nothing(tmp_path: Path, monkeypatch: Any, limit: int) -> None:
    monkeypatch.setattr(reports, "REPORTS_IN_FLIGHT", limit)
    asyncio.run(_overlap(tmp_path, limit))


async def _overlap(tmp_path: Path, limit: int) -> None:
    server = ScriptedServer()
    agent = make_agent(tmp_path, server)
    sender = asyncio.create_task(agent.send_events())
    for i in range(10):  # reported one by one while the answers are held back
        agent.report(exited(f"t-{i}"))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert server.in_flight == limit
    server.release.set()
    await agent.flush()
    sender.cancel()
    sent = [event["id"] for report in server.reports for event in report]
    assert sorted(sent) == sorted(f"t-{i}" for i in range(10)) and len(sent) == 10
    assert server.most_in_flight == limit
    assert len(server.reports) <= limit + 2  # what waited for a free slot left as one batch


def test_flush_sends_the_rest_and_waits_for_reports_in_flight(tmp_path: Path) -> None:
    asyncio.run(_flush(tmp_path))


async def _flush(tmp_path: Path) -> None:
    server = ScriptedServer()
    agent = make_agent(tmp_path, server)
    sender = asyncio.create_task(agent.send_events())
    agent.report(exited("t-1"))
    await asyncio.sleep(0.01)
    agent.report(exited("t-2"))
    flushing = asyncio.create_task(agent.flush())
    await asyncio.sleep(0.01)
    assert not flushing.done()
    server.release.set()
    await flushing
    sender.cancel()
    assert sorted(event["id"] for report in server.reports for event in report) == ["t-1", "t-2"]
    assert not agent.sending


def test_a_failed_report_is_sent_again(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(reports, "RETRY_SECONDS", 0.001)
    asyncio.run(_retried(tmp_path))


async def _retried(tmp_path: Path) -> None:
    server = ScriptedServer(fail_first=2, released=True)
    agent = make_agent(tmp_path, server)
    agent.report(exited("t-1"))
    await agent.flush()
    assert server.reports == [[msgspec.to_builtins(exited("t-1"))]]


def test_a_report_waits_briefly_for_the_exits_of_runs_still_going(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(reports, "REPORT_HOLD_SECONDS", 0.5)   # (long enough for a loaded machine's 10 ms sleep)
    asyncio.run(_held(tmp_path))


async def _held(tmp_path: Path) -> None:
    server = ScriptedServer(released=True)
    agent = make_agent(tmp_path, server)
    node = Node("node-1", tmp_path / "node-1")
    agent.nodes[node.id] = node
    going = asyncio.create_task(asyncio.sleep(10))
    node.runs["t-2"] = going
    sender = asyncio.create_task(agent.send_events())
    agent.report(exited("t-1"))
    await asyncio.sleep(0.01)
    assert server.reports == []  # held: t-2 still runs
    del node.runs["t-2"]
    agent.report(exited("t-2"))
    await asyncio.sleep(1.0)
    assert server.reports == [[msgspec.to_builtins(exited("t-1")), msgspec.to_builtins(exited("t-2"))]]
    going.cancel()
    sender.cancel()


def test_an_exit_with_nothing_else_running_leaves_at_once(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(reports, "REPORT_HOLD_SECONDS", 10.0)
    asyncio.run(_at_once(tmp_path))


async def _at_once(tmp_path: Path) -> None:
    server = ScriptedServer(released=True)
    agent = make_agent(tmp_path, server)
    sender = asyncio.create_task(agent.send_events())
    agent.report(exited("t-1"))
    await asyncio.sleep(0.01)
    assert server.reports == [[msgspec.to_builtins(exited("t-1"))]]
    sender.cancel()


def test_a_report_whose_answer_the_agent_fails_on_is_logged_and_sent_again(tmp_path: Path, monkeypatch: Any,
                                                                          caplog: Any) -> None:
    """A fault of the agent's own after the report left (never the server's) does not lose the report: it
    is logged with its traceback and the report is sent again (reports are idempotent by run id)."""
    monkeypatch.setattr(reports, "RETRY_SECONDS", 0.001)
    asyncio.run(_own_fault(tmp_path, monkeypatch))
    assert "reporting to the server failed unexpectedly; retrying" in caplog.text


async def _own_fault(tmp_path: Path, monkeypatch: Any) -> None:
    server = ScriptedServer(released=True)
    agent = make_agent(tmp_path, server)
    monkeypatch.setattr(agent, "handle_all", _failing_once())
    agent.report(exited("t-1"))
    await agent.flush()
    assert server.reports == [[msgspec.to_builtins(exited("t-1"))]] * 2


def _failing_once() -> Any:
    faults = [RuntimeError("a bug")]

    def handle_all(commands: Any) -> None:
        if faults:
            raise faults.pop()

    return handle_all


def test_an_ending_agent_gives_up_a_report_it_cannot_send(tmp_path: Path, monkeypatch: Any) -> None:
    """A fault that would repeat for ever does not keep an ending agent from ending (flush returns)."""
    monkeypatch.setattr(reports, "RETRY_SECONDS", 0.001)
    asyncio.run(_ending(tmp_path, monkeypatch))


async def _ending(tmp_path: Path, monkeypatch: Any) -> None:
    agent = make_agent(tmp_path, ScriptedServer(released=True))

    def always(commands: Any) -> None:
        raise RuntimeError("a bug that repeats")

    monkeypatch.setattr(agent, "handle_all", always)
    agent.done.set()
    agent.report(exited("t-1"))
    await asyncio.wait_for(agent.flush(), 5)


def started(run_id: str) -> Event:
    return Event(type="started", id=run_id, startTime="2026-12-07T00:00:00.000000Z")


def test_a_started_word_is_held_back_then_sent_with_the_next_report(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(reports, "START_HOLD_SECONDS", 0.05)
    asyncio.run(_start_held(tmp_path))


async def _start_held(tmp_path: Path) -> None:
    server = ScriptedServer(released=True)
    agent = make_agent(tmp_path, server)
    sender = asyncio.create_task(agent.send_events())
    agent.report(started("t-1"))
    await asyncio.sleep(0.01)
    assert server.reports == []   # held: its run may end before it is due
    agent.report(exited("t-0"))   # another run's exit leaves at once, without it
    await asyncio.sleep(0.01)
    assert server.reports == [[msgspec.to_builtins(exited("t-0"))]]
    await asyncio.sleep(0.1)      # due: sent on its own
    assert server.reports[1:] == [[msgspec.to_builtins(started("t-1"))]]
    sender.cancel()


def test_a_run_that_ends_while_its_start_is_held_is_reported_by_its_exit_alone(tmp_path: Path,
                                                                             monkeypatch: Any) -> None:
    monkeypatch.setattr(reports, "START_HOLD_SECONDS", 10.0)
    asyncio.run(_first_word(tmp_path))


async def _first_word(tmp_path: Path) -> None:
    server = ScriptedServer(released=True)
    agent = make_agent(tmp_path, server)
    sender = asyncio.create_task(agent.send_events())
    agent.report(started("t-1"))
    agent.report(started("t-2"))
    agent.report(started("t-3"))
    ended = exited("t-1")
    ended.reserved = True
    agent.report(ended)                                   # t-1 ran to its end: its exit says both
    agent.report(Event(type="unreserved", id="t-2"))      # t-2 was killed on the server's word
    await asyncio.sleep(0.02)
    assert server.reports == [[msgspec.to_builtins(ended), msgspec.to_builtins(Event(type="unreserved", id="t-2"))]]
    await agent.flush()                                   # at the agent's end a held start goes all the same
    assert server.reports[1:] == [[msgspec.to_builtins(started("t-3"))]]
    assert agent.held_starts == {}
    sender.cancel()
