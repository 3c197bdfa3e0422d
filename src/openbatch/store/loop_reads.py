"""PostgreSQL point reads on the event loop: no worker-thread hop, no pool checkout per request.

A read of one indexed row on PostgreSQL is a network round trip; in a worker thread it also
pays the hop to the thread and back and SQLAlchemy's pool checkout (Get Task Counts, the
hottest read: most of its time). Here each event loop keeps a few psycopg async connections
in autocommit, and a statement compiled by :class:`~openbatch.store.prepared.Prepared`
runs on one of them. Each loop has its own (a connection belongs to the loop that made it).
A write that is one statement, atomic by itself, may run here too (an agent's long-poll taking
its queue of commands: ``DELETE ... RETURNING``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import psycopg
from sqlalchemy.engine import Dialect, make_url

from .lease import KEEPALIVE
from .prepared import Prepared, Row

#: Connections per event loop: enough to keep PostgreSQL's side busy, few enough not to crowd it.
CONNECTIONS = 4
#: A database that does not answer fails the request instead of hanging it (libpq parameters).
LIVENESS = {"connect_timeout": 10, **KEEPALIVE}


class LoopReads:
    def __init__(self, url: str, dialect: Dialect) -> None:
        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._dialect = dialect
        self._idle: dict[asyncio.AbstractEventLoop, asyncio.Queue[psycopg.AsyncConnection | None]] = {}

    def _queue(self) -> asyncio.Queue[psycopg.AsyncConnection | None]:
        loop = asyncio.get_running_loop()
        queue = self._idle.get(loop)
        if queue is None:
            queue = self._idle[loop] = asyncio.Queue()
            for _ in range(CONNECTIONS):
                queue.put_nowait(None)   # a slot: connected on first use
        return queue

    async def rows(self, statement: Prepared, params: Mapping[str, Any]) -> list[Row]:
        """``statement`` on a connection of this loop; a connection that fails is replaced (and
        the statement, a read, tried once more on a new one)."""
        compiled = statement.compiled_for(self._dialect)
        sql, values = compiled.bind(params)
        queue = self._queue()
        conn = await queue.get()
        try:
            for attempt in (1, 2):
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **LIVENESS)
                    cursor = await conn.execute(sql, values)
                    return compiled.read(await cursor.fetchall())
                except psycopg.OperationalError:
                    if conn is not None:
                        await conn.close()
                    conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            queue.put_nowait(conn)

    async def first(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        rows = await self.rows(statement, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        """Close this loop's connections (those idle now)."""
        queue = self._idle.pop(asyncio.get_running_loop(), None)
        while queue is not None and not queue.empty():
            conn = queue.get_nowait()
            if conn is not None:
                await conn.close()
