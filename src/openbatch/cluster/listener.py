"""This server's ear on PostgreSQL: a thread that LISTENs on the cluster's channels and hands each
notification to its handler (store/cluster_queries.py names them).

A notification sent while the connection was down is lost, so after every (re)connection each
handler is called once with ``None``: whatever it waits for, it looks again.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Mapping

import psycopg
import psycopg.sql
import sqlalchemy as sa

from ..store.lease import KEEPALIVE

log = logging.getLogger("openbatch.cluster")

#: How often the thread looks whether it should stop, and waits before reconnecting.
TICK_SECONDS = 1.0


class Listener:
    def __init__(self, url: str, handlers: Mapping[str, Callable[[str | None], None]]) -> None:
        self.dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.handlers = dict(handlers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="openbatch-listener", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TICK_SECONDS * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, **KEEPALIVE) as conn:
                    for channel in self.handlers:
                        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
                    self._connected.set()
                    self._catch_up()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=TICK_SECONDS):
                            self._handle(notice.channel, notice.payload)
            except psycopg.Error as error:
                self._connected.clear()
                if not self._stop.is_set():
                    log.warning("listening to the database failed (%s); reconnecting", error)
                    self._stop.wait(TICK_SECONDS)

    def _catch_up(self) -> None:
        for channel in self.handlers:
            self._handle(channel, None)

    def _handle(self, channel: str, payload: str | None) -> None:
        try:
            self.handlers[channel](payload)
        except Exception:  # noqa: BLE001 - one failed handler must not deafen the server
            log.exception("handling a %s notification failed", channel)
