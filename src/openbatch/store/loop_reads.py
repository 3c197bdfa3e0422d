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
import weakref
from typing import Any, Literal, Mapping, Optional

import psycopg
from sqlalchemy.engine import Dialect, make_url

from .lease import KEEPALIVE
from .prepared import Prepared, Row

#: Connections per event loop and lane: reads (Get Task Counts, Get Task) and takes (long-polls
#: taking their agent's commands, which may wait for a report's transaction) never hold up each other.
CONNECTIONS = {"reads": 4, "takes": 2}
#: How every connection of the server plans (the engine's too, store/engine.py). psycopg prepares a
#: statement after five runs and PostgreSQL may then keep one generic plan for it, made once from the
#: table's size at that moment. Made while a table is small (a new database, or statistics older than the
#: data) that plan is a seq scan, kept as the table grows (AddTaskCollection fell from ~4,000 to ~400
#: tasks/s by 100,000 tasks). With seq scans priced out it is an index scan, right at any size, and the
#: planning a custom plan costs at each run is saved (docs/performance.md: figure 1 on PostgreSQL +11–21 %,
#: add → running ~1 ms sooner). A table no index serves is still scanned: the setting prices seq scans,
#: it does not forbid them. tests/store/test_plans.py checks the generic plans of a task's whole life.
#: JIT off: a seq scan so priced costs more than jit_above_cost, and compiling it took ~20-60 ms a
#: statement (JIT serves long analytic queries, none of which the server runs).
PLANNING = "-c plan_cache_mode=auto -c enable_seqscan=off -c jit=off"
#: A database that does not answer fails the request instead of hanging it (libpq parameters).
LIVENESS = {"connect_timeout": 10, **KEEPALIVE, "options": PLANNING}

Lane = Literal["reads", "takes"]
#: A connection with the cursor it always runs on (a cursor made per statement cost ~15 µs of CPU), or
#: None: connected on first use.
_Slot = Optional[tuple[psycopg.AsyncConnection, psycopg.AsyncCursor[Any]]]


class _OnLoop:
    """What a LoopReads keeps on one event loop: its lanes of connections (a queue of slots each: an
    idle connection, or None to connect on first use), and every connection open there."""

    __slots__ = ("lanes", "open")

    def __init__(self) -> None:
        self.lanes: dict[str, asyncio.Queue[_Slot]] = {}
        for lane, count in CONNECTIONS.items():
            queue = self.lanes[lane] = asyncio.Queue()
            for _ in range(count):
                queue.put_nowait(None)
        self.open: set[psycopg.AsyncConnection] = set()


class LoopReads:
    def __init__(self, url: str, dialect: Dialect) -> None:
        self._conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._dialect = dialect
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop] = weakref.WeakKeyDictionary()
        #: The last loop asked for and its state, held weakly (a WeakKeyDictionary lookup makes a weak
        #: reference each time: ~5 % of the server's CPU under Get Task Counts).
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], _OnLoop] | None = None

    def _here(self) -> _OnLoop:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _OnLoop()
        self._last = (weakref.ref(loop), state)
        return state

    async def rows(self, statement: Prepared, params: Mapping[str, Any], *, lane: Lane = "reads") -> list[Row]:
        """``statement`` on a connection of this loop's ``lane``. A connection that fails is replaced;
        a read is then tried once more on a new one. A take is not: its DELETE may have committed
        before the connection failed, so the error goes to the caller (who looks again later)."""
        compiled = statement.compiled_for(self._dialect)
        sql, values = compiled.bind(params)
        here = self._here()
        queue = here.lanes[lane]
        slot = await queue.get()
        try:
            for attempt in (1, 2):
                try:
                    if slot is None or slot[0].closed:
                        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **LIVENESS)
                        here.open.add(conn)
                        slot = (conn, conn.cursor())
                    cursor = slot[1]
                    await cursor.execute(sql, values)
                    return compiled.read(await cursor.fetchall())
                except psycopg.OperationalError:
                    if slot is not None:
                        here.open.discard(slot[0])
                        await slot[0].close()
                    slot = None
                    if attempt == 2 or lane != "reads":
                        raise
            raise AssertionError("unreachable")
        finally:
            queue.put_nowait(slot)

    async def first(self, statement: Prepared, params: Mapping[str, Any]) -> Row | None:
        rows = await self.rows(statement, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        """Close every connection of this loop (in use or idle: the server is stopping)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        self._last = None
        for conn in state.open if state is not None else ():
            await conn.close()
