"""The agent's reserved runs (prefetch): queued, started the moment a slot frees, dropped or killed on the
server's word, each ending reported once (``started`` before ``exited``, ``unreserved`` when cancelled)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from openbatch.agent import main
from openbatch.agent.main import Agent, Node
from openbatch.agent.spec import RunResult
from openbatch.protocol import KillCommand, RebootNodeCommand, RunCommand


class Runs:
    """Stands in for the runner: each run lasts until the test ends it."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []

    async def run(self, spec: Any, accounts: Any = None, link: Any = None) -> RunResult:
        self.started.append(spec.id)
        gate = self.gates.setdefault(spec.id, asyncio.Event())
        await gate.wait()
        now = datetime.now(timezone.utc)
        return RunResult(start_time=now, end_time=now, exit_code=0, failure=None, result="success")

    async def end(self, run_id: str) -> None:
        self.gates.setdefault(run_id, asyncio.Event()).set()
        for _ in range(5):
            await asyncio.sleep(0)


def _run(run_id: str, *, reserved: bool = False, slots: int = 1) -> RunCommand:
    return RunCommand(id=run_id, kind="task", nodeId="n", commandLine="true", taskDir=f"d/{run_id}", slots=slots,
                      reserved=reserved)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    fake = Runs()
    monkeypatch.setattr(main, "run", fake.run)
    return fake


def _agent(tmp_path: Path, slots: int) -> Agent:
    agent = Agent("http://server", "pool", join_token="token", root=tmp_path)
    agent.nodes["n"] = Node("n", tmp_path / "n", slots=slots)
    return agent


def _events(agent: Agent) -> list[tuple[str, str | None, Any]]:
    """What the agent would report now: its outbox, then the ``started`` words it holds back."""
    events, agent.outbox = agent.outbox + [event for _, event in agent.held_starts.values()], []
    agent.held_starts.clear()
    return [(event.type, event.id, event.reserved) for event in events]


def test_reserved_runs_wait_for_a_free_slot_and_start_at_once(tmp_path: Path, runs: Runs) -> None:
    async def scenario() -> None:
        agent = _agent(tmp_path, slots=1)
        node = agent.nodes["n"]
        agent.handle_all([_run("t-1"), _run("t-2", reserved=True), _run("t-3", reserved=True)])
        await asyncio.sleep(0)
        assert runs.started == ["t-1"] and [queued.id for queued in node.queue] == ["t-2", "t-3"]
        await runs.end("t-1")   # its slot frees: t-2 starts at once (its "started" held back a moment)
        assert runs.started == ["t-1", "t-2"]
        assert _events(agent) == [("exited", "t-1", None), ("started", "t-2", None)]
        await runs.end("t-2")
        assert _events(agent) == [("exited", "t-2", True), ("started", "t-3", None)]
        assert node.used == 1
        await runs.end("t-3")   # ended before its "started" was sent: its exit is its only word
        assert _events(agent) == [("exited", "t-3", True)]
    asyncio.run(scenario())


def test_a_kill_drops_a_queued_run_and_kills_a_started_one_each_answered_unreserved(tmp_path: Path,
                                                                                     runs: Runs) -> None:
    """(Also a kill that comes before the run's first step: its slots come free all the same.)"""
    async def scenario() -> None:
        agent = _agent(tmp_path, slots=1)
        node = agent.nodes["n"]
        agent.handle_all([_run("t-0"), KillCommand(id="t-0")])   # cancelled before it ever ran
        for _ in range(3):
            await asyncio.sleep(0)
        assert node.used == 0 and node.runs == {} and runs.started == []
        agent.handle_all([_run("t-1", reserved=True), _run("t-2", reserved=True)])
        await asyncio.sleep(0)
        assert runs.started == ["t-1"]
        agent.handle(KillCommand(id="t-2"))   # still queued: dropped, never started
        agent.handle(KillCommand(id="t-1"))   # started: killed
        for _ in range(5):
            await asyncio.sleep(0)
        assert runs.started == ["t-1"] and node.queue == [] and node.runs == {} and node.used == 0
        # (t-1's "started", still held back, goes unsaid: the server waits for "unreserved" only)
        assert _events(agent) == [("unreserved", "t-2", None), ("unreserved", "t-1", None)]
    asyncio.run(scenario())


def test_a_wide_reserved_run_waits_for_all_its_slots(tmp_path: Path, runs: Runs) -> None:
    async def scenario() -> None:
        agent = _agent(tmp_path, slots=2)
        agent.handle_all([_run("t-1"), _run("t-2", reserved=True, slots=2)])
        await asyncio.sleep(0)
        assert runs.started == ["t-1"]
        await runs.end("t-1")
        assert runs.started == ["t-1", "t-2"]
    asyncio.run(scenario())


def test_a_fenced_agent_drops_its_queue(tmp_path: Path, runs: Runs) -> None:
    async def scenario() -> None:
        agent = _agent(tmp_path, slots=1)
        node = agent.nodes["n"]
        agent.handle_all([_run("t-1"), _run("t-2", reserved=True)])
        await asyncio.sleep(0)
        assert [queued.id for queued in node.queue] == ["t-2"]
        main._kill_runs_now(node)   # fenced: nothing it held may start any more
        for _ in range(5):
            await asyncio.sleep(0)
        assert node.queue == [] and runs.started == ["t-1"]
    asyncio.run(scenario())


def test_a_reboot_drops_the_queue(tmp_path: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        agent = _agent(tmp_path, slots=1)
        node = agent.nodes["n"]

        async def ready(_: Node) -> None:
            pass

        monkeypatch.setattr(agent, "node_ready", ready)
        agent.handle_all([_run("t-1"), _run("t-2", reserved=True)])
        await asyncio.sleep(0)
        agent.handle(RebootNodeCommand(nodeId="n"))
        for _ in range(10):
            await asyncio.sleep(0)
        assert node.queue == [] and runs.started == ["t-1"] and node.used == 0
    asyncio.run(scenario())
