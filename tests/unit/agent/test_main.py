"""The agent's commands and its long-poll loop: a fault of the agent's own is logged and never stops it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from openbatch.agent import main
from openbatch.agent.http import Response
from openbatch.agent.main import Agent
from openbatch.protocol import KillCommand

from tests.unit.agent.test_reports import _failing_once


def test_a_command_that_fails_does_not_keep_the_others_of_its_answer_from_running(tmp_path: Path,
                                                                                    caplog: Any) -> None:
    agent = Agent("http://server", "pool", join_token="token", root=tmp_path)
    handled: list[str] = []

    def handle(command: Any) -> None:
        if command.id == "first":
            raise RuntimeError("a bug in handling one command")
        handled.append(command.id)

    agent.handle = handle  # type: ignore[method-assign]
    agent.handle_all([KillCommand(id="first"), KillCommand(id="second")])
    assert handled == ["second"]
    assert "the server's KillCommand command could not be handled" in caplog.text


class PollingServer:
    """Answers every long-poll at once with one command."""

    def __init__(self) -> None:
        self.polls = 0

    async def post(self, path: str, **_: Any) -> Response:
        self.polls += 1
        await asyncio.sleep(0)
        return Response(200, b'{"commands": [{"type": "kill", "id": "nothing-runs-here"}]}')


def test_the_poll_loop_goes_on_after_a_fault_of_its_own(tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    """Before, anything but a transport or decoding error ended the loop silently: the agent then never
    called again until the server found it lost."""
    monkeypatch.setattr(main, "RETRY_SECONDS", 0.001)
    asyncio.run(_poll_fault(tmp_path, monkeypatch))
    assert "polling the server failed unexpectedly" in caplog.text


async def _poll_fault(tmp_path: Path, monkeypatch: Any) -> None:
    server = PollingServer()
    agent = Agent("http://server", "pool", join_token="token", root=tmp_path)
    agent.http = server  # type: ignore[assignment]
    monkeypatch.setattr(agent, "handle_all", _failing_once())
    polling = asyncio.create_task(agent.poll_commands())
    for _ in range(200):
        if server.polls >= 3:
            break
        await asyncio.sleep(0.005)
    polling.cancel()
    assert server.polls >= 3
