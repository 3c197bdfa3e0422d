"""The store each bench server uses: a SQLite file in its data dir, or a fresh PostgreSQL database.

PostgreSQL databases live on 127.0.0.1:5432 (user ``postgres``, else ``root``; trust auth),
are created for one server each and all dropped when the run ends, even after a failure.
"""

from __future__ import annotations

import uuid
from typing import Any

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")


class Databases:
    """Hands out a database URL per server: ``None`` (the server's own SQLite) or a fresh PostgreSQL one."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._admin: Any = None
        self._names: list[str] = []

    def _connect(self) -> Any:
        import psycopg

        errors = []
        for user in PG_USERS:
            try:
                return psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="postgres",
                                       autocommit=True, connect_timeout=3)
            except Exception as exc:  # noqa: BLE001 - try the next user, report all
                errors.append(f"{user}: {exc}")
        raise RuntimeError(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT} ({'; '.join(errors)})")

    def new(self) -> str | None:
        if self.store == "sqlite":
            return None
        if self._admin is None:
            self._admin = self._connect()
        name = f"openbatch_bench_{uuid.uuid4().hex[:12]}"
        self._admin.execute(f'CREATE DATABASE "{name}"')
        self._names.append(name)
        user = self._admin.info.user
        return f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"

    def drop(self, url: str | None) -> None:
        if url is None or self._admin is None:
            return
        name = url.rsplit("/", 1)[-1]
        if name in self._names:
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._names.remove(name)

    def close(self) -> None:
        if self._admin is None:
            return
        for name in list(self._names):
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._names.clear()
        self._admin.close()
        self._admin = None
