"""SQLite serves one server: the first ``openbatch serve`` on a database file holds a lease, a second
one refuses to start, naming the first. (Several servers share a PostgreSQL database instead, one of
them leading: cluster/leader.py takes :data:`LEASE_KEY` there.)

The lease is an exclusive ``flock`` on ``<database>.lease`` beside the database file, which says who
holds it. The operating system drops the lock the moment the holder's process dies, kill -9
included: the next server starts at once.
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

#: The advisory lock key of the leader on PostgreSQL ("open" + 1 in ASCII; the writer lock is "open").
LEASE_KEY = 0x6F70656F
#: TCP keepalive of the leader's and the listener's connections: a vanished peer is noticed within
#: ~idle + interval x count s.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 1, "keepalives_count": 3,
              "tcp_user_timeout": 8000}


class LeaseHeld(Exception):
    """Another server holds the database; ``holder`` says which (as it wrote itself down)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder
        who = ", ".join(f"{key} {value}" for key, value in holder.items()) or "unknown"
        super().__init__(f"another openbatch server is using this database ({who}). Stop it first; "
                         "several servers can share a PostgreSQL database (--database-url), not a SQLite file.")


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

    def acquire(self, holder: Holder) -> None:
        """SQLite: take the lease or raise :class:`LeaseHeld` naming the server that has it (before the
        schema is migrated). PostgreSQL: nothing to take here."""
        self.holder = holder
        if self.url.get_backend_name() == "sqlite":
            self._acquire_file(holder)

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

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
