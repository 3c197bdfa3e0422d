"""Commands and wake-ups through PostgreSQL, for any number of servers sharing it.

A use case's commands are written to ``agent_commands`` in its own transaction and announced
with ``pg_notify`` (delivered at commit): whichever server the agent calls takes them, and the
one holding its long-poll is woken by the notification. A wake-up for the scheduler goes to the
leader the same way (in place when this server leads). Nothing lives only in one server's memory,
so a server that dies loses no command.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import msgspec
from sqlalchemy.engine import Connection

from ..protocol import AnyCommand, Command, RunCommand
from ..services.context import Outbox
from ..store import cluster_queries as queries
from ..store.engine import Store, after_commit

_encode = msgspec.json.Encoder().encode
_decode_commands = msgspec.json.Decoder(AnyCommand).decode
#: An answer to a file request nobody took is dropped after this long.
ANSWER_KEPT = timedelta(minutes=5)


def decode(body: str) -> Command:
    return _decode_commands(body)


class DatabaseOutbox(Outbox):
    """The services' outbox on PostgreSQL (see the module's docstring)."""

    def __init__(self, store: Store, leading: Callable[[], bool], wake: Callable[[], None],
                 nodes_changed: Callable[[], None], agent_gone: Callable[[str, bool], None]) -> None:
        self.store = store
        self.leading = leading
        self._wake = wake
        self._nodes_changed = nodes_changed
        self._agent_gone = agent_gone

    def send_in(self, conn: Connection, agent_id: str, commands: list[Command]) -> None:
        queries.enqueue_commands(conn, agent_id, [_encode(command).decode() for command in commands])

    def wake_in(self, conn: Connection) -> None:
        if self.leading():
            after_commit(conn, self._wake)
        else:
            queries.notify(conn, queries.WAKE)

    def nodes_changed_in(self, conn: Connection) -> None:
        if self.leading():
            after_commit(conn, self._nodes_changed)
        else:
            queries.notify(conn, queries.NODES_CHANGED)

    def agent_gone_in(self, conn: Connection, agent_id: str, retired: bool = False) -> None:
        queries.drop_commands(conn, agent_id)
        queries.notify(conn, queries.AGENT_GONE, f"{agent_id} {queries.RETIRED}" if retired else agent_id)
        after_commit(conn, lambda: self._agent_gone(agent_id, retired))

    def take_in(self, conn: Connection, agent_id: str) -> list[Command]:
        return [decode(body) for body in queries.take_commands(conn, agent_id)]

    def queued_runs(self, conn: Connection, agent_id: str) -> set[str]:
        return {command.id for command in map(decode, queries.queued_commands(conn, agent_id))
                if isinstance(command, RunCommand)}

    # -- outside a use case's transaction (worker threads) --------------------------------------

    async def take_on_loop(self, agent_id: str) -> list[Command]:
        """The agent's queued commands, each to one caller only (a long-poll's fetch, on the event loop:
        no worker-thread hop)."""
        assert self.store.loop_reads is not None
        return [decode(body) for body in await queries.take_commands_on_loop(self.store.loop_reads, agent_id)]

    def send_now(self, agent_id: str, commands: list[Command]) -> None:
        """Commands decided outside a transaction (file requests)."""
        with self.store.engine.begin() as conn:
            self.send_in(conn, agent_id, commands)

    def put_answer(self, request_id: str, answer: dict, now: datetime) -> None:
        """A file answer for the server that asked (another one)."""
        with self.store.engine.begin() as conn:
            queries.put_file_answer(conn, request_id, _encode(answer).decode(), now)
            queries.drop_file_answers_before(conn, now - ANSWER_KEPT)

    def take_answer(self, request_id: str) -> dict | None:
        with self.store.engine.begin() as conn:
            body = queries.take_file_answer(conn, request_id)
        return None if body is None else msgspec.json.decode(body)
