"""One leader among the servers sharing a PostgreSQL database: the holder of a session advisory
lock runs the scheduler loop and the node providers; the others serve the API and wait.

The lock lives on a connection of its own (TCP keepalives): PostgreSQL frees it the moment the
leader's process dies (kill -9 included) or, for a vanished host, once the keepalives give up; a
follower asks every :data:`TRY_SECONDS` and leads within about that time. A leader that can no
longer reach its lock stops leading at once (it cannot tell whether another has taken over), and
asks again like any follower.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable

import psycopg
import sqlalchemy as sa

from ..background import cancel_and_wait
from ..store.lease import KEEPALIVE, LEASE_KEY, Holder

log = logging.getLogger("openbatch.cluster")

#: How often a follower asks for the lock, and a leader checks that it still holds it.
TRY_SECONDS = 0.5
#: The database's side of the lock connection: it notices a vanished leader host within ~8 s too,
#: and frees the lock (its defaults would wait about two hours).
SERVER_KEEPALIVE = ("-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 "
                    "-c tcp_user_timeout=8000")


class Leadership:
    def __init__(self, url: str, holder: Holder, on_elected: Callable[[], Awaitable[None]],
                 on_lost: Callable[[], Awaitable[None]]) -> None:
        self.dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.holder = holder
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.leading = False
        #: Whether some server leads, as far as the last ask knew: this one, or the holder of the lock
        #: it was refused (False after an ask that failed: the database may be gone). For /ready.
        self.leader_known = False
        self._conn: psycopg.Connection | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Ask once now (a server alone leads before it serves), then keep asking in the background."""
        await self._step()
        self._task = asyncio.create_task(self._run(), name="openbatch-leadership")

    async def stop_asking(self) -> None:
        await cancel_and_wait(self._task)

    async def release(self) -> None:
        """Free the lock (after the leader's duties stopped): another server leads at once."""
        await asyncio.to_thread(self._close)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TRY_SECONDS)
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep trying: the database may come back
                log.exception("the leader election failed; trying again")

    async def _step(self) -> None:
        if not self.leading and await asyncio.to_thread(self._try):
            self.leading = self.leader_known = True
            log.info("this server leads: it runs the scheduler and the node providers")
            try:
                await self.on_elected()
            except Exception:  # noqa: BLE001 - never hold the lock without doing the leader's work
                log.exception("taking up the leader's duties failed: the lock goes back, to be asked for again")
                await self._step_down()
        elif self.leading and not await asyncio.to_thread(self._still_held):
            log.error("this server lost its leader lock (the database is unreachable): it stops leading "
                      "and asks again")
            await self._step_down()

    async def _step_down(self) -> None:
        self.leading = self.leader_known = False
        try:
            await self.on_lost()
        finally:
            await asyncio.to_thread(self._close)

    def _try(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.dsn, autocommit=True, options=SERVER_KEEPALIVE, **KEEPALIVE)
            if not self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()[0]:
                self.leader_known = True   # another server holds it
                return False
            self._conn.execute("INSERT INTO server_lease (id, holder) VALUES (1, %s) "
                               "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder",
                               (json.dumps(self.holder.describe()),))
            return True
        except psycopg.Error as error:
            log.warning("asking for the leader lock failed (%s); trying again", error)
            self.leader_known = False
            self._close()
            return False

    def _still_held(self) -> bool:
        try:
            assert self._conn is not None
            self._conn.execute("SELECT 1")
            return True
        except (psycopg.Error, AssertionError):
            self._close()
            return False

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
