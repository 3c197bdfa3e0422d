"""Hot statements run on the DBAPI cursor: compiled once per dialect by SQLAlchemy, then executed lean.

A :class:`Prepared` wraps a SQLAlchemy Core statement. The first time it runs on a
dialect it is compiled by SQLAlchemy (the same SQL, bind processors and result
processors SQLAlchemy would use); afterwards each execution goes straight to the
connection's DBAPI cursor, in the caller's transaction. Measured on this machine
(SQLite, a point UPDATE or SELECT by primary key): ~45 µs through
``Connection.execute`` against ~7 µs this way, and ~14 against ~6 µs per row of an
executemany. The store's hot paths (scheduling rounds, exit reports, task ingest,
counter reads) run dozens of statements per request, so this is most of their cost.

Only what those statements need is supported: named bind parameters (defaults taken
from the statement), ``expanding`` IN lists, result rows with attribute access and
``_mapping``. Anything else goes through ``Connection.execute`` as usual.
"""

from __future__ import annotations

import re
from collections import namedtuple
from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable

__all__ = ["Prepared", "Row", "defer_writes", "flush", "flush_and_commit", "read_ahead", "stop_deferring"]

_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


class Row(tuple):
    """A result row: attribute access by column name, and ``_mapping`` like SQLAlchemy's Row."""

    __slots__ = ()
    _fields: tuple[str, ...]  # set by the namedtuple each statement's row class derives from

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))


def _row_class(names: Sequence[str]) -> type[Row]:
    base = namedtuple("_Row", names, rename=True)  # type: ignore[misc]
    return type("PreparedRow", (base, Row), {"__slots__": ()})


class _Compiled:
    """One statement compiled for one dialect."""

    __slots__ = ("sql", "changes", "positional", "names", "pick", "defaults", "binders", "expanding", "row", "readers",
                 "_expanded", "_placeholder")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        #: It changes rows (a statement other than a SELECT, RETURNING rows or not).
        self.changes = self.sql.lstrip()[:6].upper() != "SELECT"
        self.positional = compiled.positiontup is not None
        self.names: list[str] = list(compiled.positiontup or [])
        self.pick = _picker(self.names)
        self.defaults: dict[str, Any] = {
            key: bind.value for key, bind in compiled.binds.items() if bind.value is not None and not bind.callable
        }
        processors = getattr(compiled, "_bind_processors", {})
        self.binders: dict[str, Callable[[Any], Any]] = {k: _memoized(v) for k, v in processors.items() if v is not None}
        self.expanding: list[str] = _POSTCOMPILE.findall(self.sql)
        for name in self.expanding:
            if not compiled.binds[name].expanding:
                raise ValueError(f"the literal-rendered parameter {name!r} is not supported here")
        self._expanded: dict[tuple[int, ...], tuple[str, list[str]]] = {}
        self._placeholder = "?" if self.positional else "%({})s"
        columns = getattr(compiled, "_result_columns", None) or []
        self.row: type[Row] | None = _row_class([c[0] for c in columns]) if columns else None
        readers = [c[3]._cached_result_processor(dialect, None) for c in columns]
        self.readers: list[tuple[int, Callable[[Any], Any]]] = [(i, r) for i, r in enumerate(readers) if r]

    def bind(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        values = {**self.defaults, **params} if self.defaults else dict(params)
        for name, process in self.binders.items():
            if name in values:
                values[name] = process(values[name])
        if self.expanding:
            sql, names = self._expand(values)
            return sql, (_picker(names)(values) if self.positional else values)
        return self.sql, (self.pick(values) if self.positional else values)

    def _expand(self, values: dict[str, Any]) -> tuple[str, list[str]]:
        """Render each expanding IN list for its length (cached per combination of lengths)."""
        lists = {name: list(values.pop(name)) for name in self.expanding}
        for name, items in lists.items():
            if not items:
                raise ValueError(f"the IN list {name!r} is empty")
            values.update((f"{name}_{i}", item) for i, item in enumerate(items, 1))
        shape = tuple(len(lists[name]) for name in self.expanding)
        cached = self._expanded.get(shape)
        if cached is None:
            def render(match: re.Match[str]) -> str:
                name = match.group(1)
                return ", ".join(self._placeholder.format(f"{name}_{i}") for i in range(1, len(lists[name]) + 1))

            names: list[str] = []
            for name in self.names:
                names.extend([f"{name}_{i}" for i in range(1, len(lists[name]) + 1)] if name in lists else [name])
            cached = self._expanded[shape] = (_POSTCOMPILE.sub(render, self.sql), names)
        return cached

    def read(self, raw: Iterable[tuple[Any, ...]]) -> list[Row]:
        row = self.row
        assert row is not None, "the statement returns no rows"
        if not self.readers:
            return [tuple.__new__(row, r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, process in self.readers:
                values[i] = process(values[i])
            out.append(tuple.__new__(row, values))
        return out


def _picker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The positional parameters from a mapping, in order (a C itemgetter)."""
    if not names:
        return lambda values: ()
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return itemgetter(*names)  # type: ignore[return-value]


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A bind processor with a cache: the rows of a batch share their few timestamps (SQLite's
    DATETIME processor formats each with ``strftime``, ~3 µs)."""
    cache: dict[Any, Any] = {}

    def bind(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            if len(cache) >= 1024:
                cache.clear()
            bound = cache[value] = process(value)
            return bound
        except TypeError:  # unhashable
            return process(value)

    return bind


class Prepared:
    """A Core statement run on the DBAPI cursor of the caller's connection (see the module doc)."""

    __slots__ = ("statement", "_by_dialect")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, conn: Connection) -> _Compiled:
        return self.compiled_for(conn.dialect)

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        """The statement compiled for ``dialect``: ``bind(params)`` gives (SQL, DBAPI parameters),
        ``read(raw rows)`` the rows (for a caller that runs it on its own connection)."""
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Row]:
        params = params or {}
        compiled = self._compiled(conn)
        ahead = conn.info.get(_AHEAD)
        if ahead and compiled.changes:   # (an UPDATE or DELETE ... RETURNING: what was read ahead may be stale)
            del conn.info[_AHEAD]
            ahead = None
        elif ahead:
            read = ahead.pop(self, None)
            if read is not None and read.rows is not None and read.params == params:
                return read.rows   # read ahead, with an earlier round trip (see read_ahead)
        cursor = _cursor(conn)
        pending = _take(conn)
        unsent = [(statement, read) for statement, read in ahead.items() if read.rows is None] if ahead else []
        if pending or unsent:   # the writes waiting, the reads ahead and this read: one round trip
            with conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
                # (the writes on a cursor of their own: a write's result that arrives early must never
                # be taken for the read's; each read ahead on its own too)
                _send(_cursor(conn, _WRITE_CURSOR), pending)
                for i, (statement, read) in enumerate(unsent):
                    _cursor(conn, _AHEAD_CURSORS[i]).execute(*statement._compiled(conn).bind(read.params))
                cursor.execute(*compiled.bind(params))
                rows = compiled.read(cursor.fetchall())
                for i, (statement, read) in enumerate(unsent):
                    read.rows = statement._compiled(conn).read(_cursor(conn, _AHEAD_CURSORS[i]).fetchall())
                return rows
        cursor.execute(*compiled.bind(params))
        return compiled.read(cursor.fetchall())

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Execute a statement that returns no rows, now; the number of rows it changed."""
        flush(conn)
        cursor = _cursor(conn)
        cursor.execute(*self._compiled(conn).bind(params or {}))
        return int(cursor.rowcount)

    def write(self, conn: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Execute a statement that returns no rows: now, or with the transaction's next read or its
        commit where writes are deferred (:func:`defer_writes`)."""
        _write(conn, (False, *self._compiled(conn).bind(params or {})))

    def run_many(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set, in one DBAPI executemany (no expanding lists); deferred like
        :meth:`write`."""
        if not params:
            return
        compiled = self._compiled(conn)
        bound = [compiled.bind(p) for p in params]
        _write(conn, (True, bound[0][0], [values for _, values in bound]))


def defer_writes(conn: Connection, opening: Sequence[str] = ()) -> None:
    """Until :func:`stop_deferring`, the writes of :meth:`Prepared.write`, :meth:`Prepared.run_many` and
    :class:`ColumnsInsert` wait on the connection and are sent with the next statement that reads, or by
    :func:`flush`, in one round trip (PostgreSQL pipeline mode). A failed write then raises there, in the
    same transaction. Every other statement on the connection must :func:`flush` first (the store's
    engine does so before each statement SQLAlchemy runs).

    ``opening``: statements without parameters that open the transaction (BEGIN, a lock), sent first,
    with whatever is sent first: a transaction's first read costs no round trip of its own to begin it."""
    conn.info[_DEFERRED] = []
    conn.info[_OPENING] = [(False, sql, None) for sql in opening]


def stop_deferring(conn: Connection) -> None:
    conn.info.pop(_DEFERRED, None)
    conn.info.pop(_OPENING, None)
    conn.info.pop(_AHEAD, None)


class _Ahead:
    """A read sent ahead of its use: its parameters, and its rows once they came."""

    __slots__ = ("params", "rows")

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.rows: list[Row] | None = None


#: At most this many reads ahead at once (each has a cursor of its own).
_AHEAD_CURSORS = tuple(f"openbatch.prepared.ahead_cursor{i}" for i in range(4))


def read_ahead(conn: Connection, reads: Sequence[tuple[Prepared, Mapping[str, Any]]]) -> None:
    """Where writes are deferred (PostgreSQL), send these reads with the transaction's next round trip
    instead of one each: a later :meth:`Prepared.rows` of the same statement with the same parameters
    takes their rows. A write queued or a statement run in between drops them (that call then reads
    afresh), so the rows a caller gets are always those it would have read then. Elsewhere nothing."""
    if conn.info.get(_DEFERRED) is None:
        return
    if len(reads) > len(_AHEAD_CURSORS):
        raise ValueError(f"at most {len(_AHEAD_CURSORS)} reads ahead")
    conn.info[_AHEAD] = {statement: _Ahead(params) for statement, params in reads}


def _take(conn: Connection) -> list["_Write"]:
    """What waits to be sent on the connection, the transaction's opening first while it is unsent;
    taken (the caller sends it)."""
    info = conn.info
    opening, pending = info.get(_OPENING), info.get(_DEFERRED)
    if opening:
        info[_OPENING] = []
    if pending:
        info[_DEFERRED] = []
    return (opening or []) + (pending or [])


def flush(conn: Connection) -> None:
    """Send what waits on the connection (one round trip), if anything. Reads ahead are dropped: a
    statement sent this way may change what they read."""
    conn.info.pop(_AHEAD, None)
    pending = _take(conn)
    if pending:
        with conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
            _send(_cursor(conn, _WRITE_CURSOR), pending)


def flush_and_commit(conn: Connection) -> None:
    """End a transaction whose writes are deferred: what waits, then COMMIT, in one round trip. A
    transaction that sent nothing and has nothing waiting never began: nothing is sent. (The driver's
    own commit() afterwards finds no transaction open and sends nothing; after a last read, with
    nothing waiting, it sends the COMMIT.)"""
    if conn.info.get(_DEFERRED):
        conn.info[_DEFERRED].append((False, "COMMIT", None))
        flush(conn)
    else:
        conn.info.pop(_OPENING, None)


_DEFERRED = "openbatch.prepared.deferred"
#: The statements that open the transaction, while they are unsent (see defer_writes).
_OPENING = "openbatch.prepared.opening"
#: The reads sent (or to send) ahead of their use: {statement: _Ahead} (see read_ahead).
_AHEAD = "openbatch.prepared.ahead"


#: (executemany?, SQL, DBAPI parameters): a write as it waits on a connection.
_Write = tuple[bool, str, Any]


def _write(conn: Connection, statement: _Write) -> None:
    """Send a write now, or leave it waiting on the connection where writes are deferred."""
    conn.info.pop(_AHEAD, None)   # what was read ahead may be what this changes
    pending = conn.info.get(_DEFERRED)
    if pending is not None:
        pending.append(statement)
    else:
        _send(_cursor(conn), [statement])


def _send(cursor: Any, statements: Sequence[_Write]) -> None:
    for many, sql, values in statements:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)


_CURSOR = "openbatch.prepared.cursor"
_WRITE_CURSOR = "openbatch.prepared.write_cursor"


def _cursor(conn: Connection, key: str = _CURSOR) -> Any:
    """The DBAPI cursor kept with the pooled connection (cheap to reuse, same transaction)."""
    dbapi = conn.connection.dbapi_connection
    info = conn.info
    cursor = info.get(key)
    if cursor is None or cursor.connection is not dbapi or getattr(cursor, "closed", False):
        cursor = info[key] = dbapi.cursor()  # type: ignore[union-attr]
    return cursor


class ColumnsInsert:
    """PostgreSQL: many rows in one ``INSERT ... SELECT * FROM unnest(column arrays)``, sent binary.

    Against a pipelined executemany of the same 100 task rows (measured here, per row): the
    backend's CPU 31 -> 20 µs (one statement planned and run instead of 100) and the server's
    14 -> 10 µs (one parameter per column; binary arrays need no quoting of the JSON bodies).
    """

    __slots__ = ("names", "sql")

    def __init__(self, table: Any, names: Sequence[str], dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        # Element types without collation ("VARCHAR(64) COLLATE "C"[]" is not a type) nor length: an
        # explicit cast to VARCHAR(64) would cut a longer string silently, the INSERT's own refuses it.
        types = [re.sub(r"\(.*?\)", "", table.c[name].type.compile(dialect=dialect).split(" COLLATE ")[0])
                 for name in names]
        self.names = tuple(names)
        self.sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                    f"SELECT * FROM unnest({', '.join(f'%b::{t}[]' for t in types)})")

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert now, or deferred like :meth:`Prepared.write`."""
        _write(conn, (False, self.sql, [[row.get(name) for row in rows] for name in self.names]))
