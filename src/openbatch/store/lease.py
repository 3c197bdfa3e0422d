"""One server per database: the first ``openbatch serve`` holds a lease, a second one refuses to start.

Until several API servers can share a database safely, a second server on the same
database would split the agents' commands between two memories and stall. So the
server takes, before it serves, a lock that lives exactly as long as its process:

- SQLite: an exclusive ``flock`` on ``<database>.lease`` beside the database file; the
  file says who holds it.
- PostgreSQL: a session advisory lock held by one dedicated connection, with TCP
  keepalives, and the holder written into ``server_lease``.

The operating system (for the file) or PostgreSQL (for the session) drops the lock the
moment the holder's process dies, kill -9 included: the next server starts at once. A
holder whose whole host vanished is noticed through the keepalives within seconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

#: The advisory lock key of the lease ("open" + 1 in ASCII; the writer lock is "open").
LEASE_KEY = 0x6F70656F
#: TCP keepalive of the lease connection: a vanished host is noticed within ~idle + interval x count s.
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 1, "keepalives_count": 3,
              "tcp_user_timeout": 8000}


class LeaseHeld(Exception):
    """Another server holds the database; ``holder`` says which (as it wrote itself down)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder
        who = ", ".join(f"{key} {value}" for key, value in holder.items()) or "unknown"
        super().__init__(f"another openbatch server is using this database ({who}). Stop it first; "
                         "a second server on the same database is not supported yet.")


@dataclass
class Holder:
    """Who holds the lease: written where the next server reads it."""

    url: str
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "pid": self.pid, "host": self.host,
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


class Lease:
    """The lease of one server process on its database; :meth:`release` (or the process's end) frees it."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        self.holder = Holder(url="")
        self._file: Any = None
        self._connection: Any = None

    def acquire(self, holder: Holder) -> None:
        """Take the lease or raise :class:`LeaseHeld` naming the server that has it (before the schema
        is migrated: two servers never migrate at once). Then :meth:`announce` (after the migration)."""
        self.holder = holder
        if self.url.get_backend_name() == "sqlite":
            self._acquire_file(holder)
        else:
            self._acquire_advisory()

    def announce(self) -> None:
        """Write down who holds the lease, for the next server's refusal (PostgreSQL: needs the schema)."""
        if self._connection is not None:
            self._connection.execute(
                "INSERT INTO server_lease (id, holder) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder", (json.dumps(self.holder.describe()),))

    def _acquire_file(self, holder: Holder) -> None:
        database = self.url.database
        if not database or database == ":memory:":
            return   # nothing to share
        path = Path(database + ".lease")
        handle = open(path, "a+")  # noqa: SIM115 - kept open for the life of the lease
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            text = handle.read()
            handle.close()
            raise LeaseHeld(_parse(text)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder.describe()))
        handle.flush()
        self._file = handle

    def _acquire_advisory(self) -> None:
        import psycopg

        url = self.url.set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, **_KEEPALIVE)
        try:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()[0]:
                try:
                    row = conn.execute("SELECT holder FROM server_lease WHERE id = 1").fetchone()
                except psycopg.Error:   # a holder from before the lease table
                    row = None
                raise LeaseHeld(_parse(row[0] if row else ""))
        except BaseException:
            conn.close()
            raise
        self._connection = conn

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            try:
                self._connection.close()   # the session's advisory lock goes with it
            finally:
                self._connection = None


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
