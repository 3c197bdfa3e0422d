"""Engine and transactions for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue on the lock instead of failing when one upgrades a read lock. Within the
server process they queue on a :class:`threading.Lock` first: SQLite's own busy handler
waits by sleeping (1, 2, 5 ms ...), which would leave the CPU idle while writers wait.

PostgreSQL write transactions take one transaction-scoped advisory lock first, so
writers run one at a time there too (across every API server sharing the database). The
BEGIN and the lock go with the transaction's first statement (pipelined, no round trip of
their own): a transaction holds the lock from its first statement, not from ``write()``.
Use cases lock pools, jobs, tasks and nodes in different orders (a resize goes pool ->
node -> task -> job, a task report task -> job -> node); with one writer at a time
they cannot deadlock. Reads never wait. Rows are still read ``FOR UPDATE`` so the
code stays correct if this lock is ever narrowed (say, per pool).

The one narrower mode, ``lock="shared"``, is for transactions that only add rows and move
counters by deltas (adding tasks): they take the lock shared, so they run alongside each
other but never alongside an exclusive writer. What they can still meet is each other: a
concurrent insert of the same key, or a lock cycle between two of them; both surface as
:class:`Conflict`, and the use case runs again (it then sees the other's rows).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from . import prepared
from .loop_reads import PLANNING, LoopReads
from .schema import metadata


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            pool_size=8,
            max_overflow=8,
            pool_pre_ping=False,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False,
                              connect_args={"options": PLANNING})
    _ping_when_idle(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def writes_first(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        prepared.flush(conn)   # deferred writes go before anything SQLAlchemy runs (prepared.defer_writes)

    return engine


#: A pooled PostgreSQL connection unused this long is pinged before it is used again.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping for connections that sat idle only: a ping on every checkout was a round trip per
    transaction (Get Task Counts on PostgreSQL: 784 -> 1,241 req/s, p99 25 -> 15 ms without it). A
    connection the database dropped while it was idle (a restart, a timeout) is replaced before use;
    one dropped while busy fails its transaction once and the pool is then renewed."""
    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["openbatch.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy) -> None:  # type: ignore[no-untyped-def]
        since = record.info.get("openbatch.idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure: the pool replaces the connection
            raise sa.exc.DisconnectionError(str(error)) from error


def create_sqlite_reader_engine(url: str) -> Engine:
    """Connections kept by threads for their life (see :meth:`Store.read_statement`): outside the
    shared pool, which they would otherwise hold one each of for ever (8 + 8 ran out once the
    worker threads grew under load, and every pooled read then waited 30 s and failed)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              connect_args={"check_same_thread": False, "timeout": 30})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("sqlite_single_statement"):
            return  # the statement runs in SQLite's own implicit transaction
        # Straight on the DBAPI connection: through SQLAlchemy a BEGIN costs ~60 µs of Python.
        conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN")


_AFTER_COMMIT = "openbatch.after_commit"
#: The advisory lock key serializing PostgreSQL writers ("open" in ASCII).
WRITER_LOCK = 0x6F70656E
#: How a PostgreSQL write transaction starts: BEGIN and the writers' lock, sent with its first statement
#: (pipelined: no round trip of their own). The connection is in autocommit, so the driver sends no
#: BEGIN of its own; the transaction's last writes carry its COMMIT (prepared.flush_and_commit).
_PG_BEGIN = {
    "exclusive": ("BEGIN", f"SELECT pg_advisory_xact_lock({WRITER_LOCK})"),
    "shared": ("BEGIN", f"SELECT pg_advisory_xact_lock_shared({WRITER_LOCK})"),
    "none": ("BEGIN",),
}
#: How a write transaction meets other writers (PostgreSQL; SQLite always has one writer).
WriterLock = Literal["exclusive", "shared", "none"]
#: SQLSTATEs of a transaction that met a concurrent one: unique violation, deadlock, serialization.
_CONFLICTS = frozenset({"23505", "40P01", "40001"})


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the transaction of ``conn`` commits (never if it rolls back)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(callback)


_LOCALS = "openbatch.transaction_locals"
T = TypeVar("T")


def transaction_local(conn: Connection, key: str, make: Callable[[], T]) -> T:
    """A value that lives as long as the write transaction of ``conn``: made by ``make`` on first use,
    gone when the transaction ends (committed or not)."""
    values = conn.info.setdefault(_LOCALS, {})
    value = values.get(key)
    if value is None:
        value = values[key] = make()
    return value


class Conflict(Exception):
    """A PostgreSQL write met a concurrent transaction (same key inserted, lock cycle); nothing was
    written: running the use case again sees the other's committed rows."""


class Duplicate(Exception):
    """A write transaction alone among writers (lock ``exclusive``; SQLite) inserted a row whose unique
    key another row holds; nothing was written. ``table``: where. A use case that lets the database find
    a taken key, instead of reading it first, answers it as its own error."""

    def __init__(self, table: str, detail: str) -> None:
        super().__init__(f"{table}: {detail}")
        self.table = table


def _cause(error: BaseException) -> BaseException:
    """The driver's error: through SQLAlchemy it is wrapped, prepared statements raise it bare."""
    return getattr(error, "orig", None) or error


def _duplicate(error: BaseException, lock: WriterLock) -> Duplicate | None:
    """``error`` as a :class:`Duplicate`, if it is a unique key's violation."""
    cause = _cause(error)
    if lock == "shared":
        return None   # (a Conflict: run again)
    if getattr(cause, "sqlstate", None) == "23505":   # PostgreSQL's unique_violation
        return Duplicate(getattr(cause.diag, "table_name", None) or "", str(cause))  # type: ignore[attr-defined]
    message = str(cause)
    if isinstance(cause, sqlite3.IntegrityError) and message.startswith("UNIQUE constraint failed: "):
        return Duplicate(message.removeprefix("UNIQUE constraint failed: ").split(".", 1)[0], message)
    return None


class WriterBusy(Exception):
    """Within :meth:`Store.in_place`: the first write transaction found the SQLite writer lock taken."""


#: Set by :meth:`Store.in_place` until the first write transaction starts.
_IN_PLACE: ContextVar[bool] = ContextVar("openbatch_store_in_place", default=False)


class Store:
    """The database: one engine, write and read transactions, schema setup."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._writer = threading.Lock()
        self._readers = threading.local()
        self._reader_connections: list[Connection] = []
        #: SQLite: where each thread's own reader connection comes from (never the shared pool).
        self._reader_engine = create_sqlite_reader_engine(url) if self.is_sqlite else None
        self._writer_connection: Connection | None = None
        #: PostgreSQL: the same pool, each statement its own transaction (for :meth:`read_statement`).
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        #: PostgreSQL: point reads run on the event loop (see loop_reads.py); None on SQLite.
        self.loop_reads = None if self.is_sqlite else LoopReads(url, self.engine.dialect)

    @contextmanager
    def write(self, *, lock: WriterLock = "exclusive") -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any exception.

        ``lock`` (PostgreSQL; SQLite has one writer anyway): ``"exclusive"``, one writer at a
        time; ``"shared"``, alongside other shared writers only (see the module's docstring:
        the caller handles :class:`Conflict`); ``"none"``, without the writers' advisory lock,
        for a write that touches rows no use case reads to decide anything (an agent's last
        call): it then never waits for a long transaction.

        Callbacks registered with :func:`after_commit` run once the commit succeeded (on SQLite
        before the next writer starts).
        """
        if self.is_sqlite:
            self._take_writer()
            try:
                try:
                    callbacks = yield from self._transaction(self._sqlite_writer())
                except Exception as error:
                    duplicate = _duplicate(error, lock)
                    if duplicate is not None:
                        raise duplicate from error
                    raise
                # Before the next writer: what a transaction sends is queued before what the next
                # one decides (a report's answer takes the queue in its transaction, in order).
                for callback in callbacks:
                    callback()
            finally:
                self._writer.release()
        else:
            try:
                with self._autocommit.connect() as conn:   # BEGIN is ours (see _PG_BEGIN)
                    callbacks = yield from self._transaction(conn, lock)
            except Exception as error:
                cause = _cause(error)
                if lock == "shared" and getattr(cause, "sqlstate", None) in _CONFLICTS:
                    raise Conflict(str(cause)) from error
                duplicate = _duplicate(error, lock)
                if duplicate is not None:
                    raise duplicate from error
                raise
            for callback in callbacks:
                callback()

    def _transaction(self, conn: Connection, lock: WriterLock = "exclusive") -> Iterator[Connection]:
        conn.info.pop(_AFTER_COMMIT, None)
        conn.info.pop(_LOCALS, None)
        try:
            with conn.begin():   # (PostgreSQL: commit() still sends COMMIT, rollback() ROLLBACK)
                if not self.is_sqlite:   # BEGIN and the writes: sent with the next read, or with COMMIT
                    prepared.defer_writes(conn, _PG_BEGIN[lock])
                yield conn
                prepared.flush_and_commit(conn)
            return conn.info.pop(_AFTER_COMMIT, [])
        finally:
            prepared.stop_deferring(conn)
            conn.info.pop(_AFTER_COMMIT, None)
            conn.info.pop(_LOCALS, None)

    def _sqlite_writer(self) -> Connection:
        """The one connection SQLite writes go through (the caller holds the writer lock).

        Kept open so its page cache stays warm: SQLite drops a connection's cache whenever
        another connection has written, so writes rotating through a pool read every page
        they touch from the file again.
        """
        conn = self._writer_connection
        if conn is None or conn.closed or conn.invalidated:
            conn = self._writer_connection = self.engine.connect().execution_options(sqlite_immediate=True)
        return conn

    def _take_writer(self) -> None:
        if _IN_PLACE.get():
            _IN_PLACE.set(False)  # only the first write transaction of the block may give up
            if not self._writer.acquire(blocking=False):
                raise WriterBusy()
        else:
            self._writer.acquire()

    @contextmanager
    def in_place(self) -> Iterator[None]:
        """Run a use case on this thread only if the SQLite writer is free when it starts writing.

        Its first write transaction raises :class:`WriterBusy` (before anything is written)
        when another thread holds the writer lock, instead of waiting for it: the event loop
        can then hand the use case to a worker thread rather than stall.
        """
        token = _IN_PLACE.set(True)
        try:
            yield
        finally:
            _IN_PLACE.reset(token)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def read_statement(self) -> Iterator[Connection]:
        """A connection for one SELECT (consistent by itself).

        On SQLite it is this thread's own connection, kept open in autocommit: no pool
        checkout, no BEGIN/COMMIT (~100 µs of SQLAlchemy per read, more than the read).
        On PostgreSQL a pooled connection in autocommit: no BEGIN and COMMIT round trips (Get
        Task Counts: 2,172 -> ~2,950 req/s on 2,000 tasks, 2x4 clients).
        Run :class:`~openbatch.store.prepared.Prepared` statements on it.
        """
        if self.is_sqlite:
            yield self._thread_reader()
            return
        with self._autocommit.connect() as conn:   # no BEGIN and COMMIT round trips around it
            yield conn

    def _thread_reader(self) -> Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            assert self._reader_engine is not None
            conn = self._reader_engine.connect().execution_options(sqlite_single_statement=True)
            self._readers.conn = conn
            self._reader_connections.append(conn)
        return conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic)."""
        from .migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        if self._writer_connection is not None:
            self._writer_connection.close()
            self._writer_connection = None
        for conn in self._reader_connections:
            conn.close()
        self._reader_connections.clear()
        self._readers = threading.local()
        if self._reader_engine is not None:
            self._reader_engine.dispose()
        self.engine.dispose()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'openbatch.db').resolve()}"


__all__ = ["Conflict", "Connection", "Store", "WriterBusy", "WriterLock", "after_commit", "create_engine", "transaction_local", "sqlite_url", "metadata"]
