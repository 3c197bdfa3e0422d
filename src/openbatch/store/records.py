"""Dumb persistence of resource bodies: get, page, insert, update, delete.

A :class:`Collection` maps one table. It knows which columns to derive from a
body (its projection) and how a resource is scoped (by account, or by job), and
nothing about the rules of the service. Writers pass a connection inside a
transaction from :class:`openbatch.store.engine.Store`.
"""

from __future__ import annotations

from functools import lru_cache
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain import clock
from ..domain.tasks import retained_until
from . import schema
from .engine import Duplicate
from .filter_columns import FILTER_COLUMNS
from .filters import compile_filter
from .loop_reads import LoopReads
from .prepared import ColumnsInsert, Prepared

Json = dict[str, Any]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Record:
    """A stored resource: its primary key, wire body, ETag, Last-Modified and the row's columns.

    A record read from the database decodes its body on first use: a scheduling round
    or an exit report reads rows whose bodies it mostly never looks at.
    """

    __slots__ = ("pk", "_body", "_encoded", "etag", "_last_modified", "row")

    def __init__(self, pk: int, body: Json | None, etag: str, last_modified: datetime | None,
                 row: Mapping[str, Any], *, encoded: str | bytes | None = None) -> None:
        self.pk = pk
        self._body = body
        self._encoded = encoded
        self.etag = etag
        self._last_modified = last_modified
        self.row = row

    @property
    def body(self) -> Json:
        body = self._body
        if body is None:
            body = self._body = _decode(self._encoded)  # type: ignore[arg-type]
            self._encoded = None
        return body

    @property
    def last_modified(self) -> datetime:
        return clock.aware(self._last_modified)  # type: ignore[return-value]

    @property
    def last_modified_wire(self) -> str:
        """``last_modified`` as the wire writes it."""
        return clock.to_wire(self._last_modified)  # type: ignore[arg-type]

    def with_columns(self, values: Mapping[str, Any]) -> "Record":
        """The same resource after a change of non-body columns (its body still undecoded if it was)."""
        return Record(self.pk, self._body, self.etag, self._last_modified, {**self.row, **values},
                      encoded=self._encoded)

    def __repr__(self) -> str:
        return f"Record(pk={self.pk!r}, etag={self.etag!r}, body={self.body!r})"


def _wire_time(body: Json, *path: str) -> datetime | None:
    value: Any = body
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return _stored_time(value) if value else None


@lru_cache(maxsize=1024)
def _stored_time(wire: str) -> datetime:
    """A wire timestamp as stored (naive UTC); the bodies of one batch share their few stamps."""
    return clock.naive(clock.from_wire(wire))


def _key(value: str | None) -> str | None:
    return value.lower() if value else None


class Collection:
    def __init__(
        self,
        table: sa.Table,
        project: Callable[[Json], dict[str, Any]],
        scope: Sequence[str],
        order: Sequence[str] = ("id_key",),
        key: Sequence[str] = ("id_key",),
        fixed: Sequence[str] = (),
        project_changes: Callable[[Json], dict[str, Any]] | None = None,
        listed: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> None:
        self.table = table
        #: The column answering each property a list's ``$filter`` may name (store/filter_columns.py).
        self.filters = dict(filters or {})
        self.project = project
        #: Projected columns that never change after the insert: updates leave them (and their indexes) alone.
        self.fixed = tuple(fixed)
        #: The projection of an update (``project`` without ``fixed``), when the table has a cheaper one.
        self._project_changes = project_changes
        #: The columns a list page reads (None: all); the order columns must be among them.
        self.listed = tuple(listed) if listed is not None else None
        #: Columns that are NULL unless an insert names them (no default of their own).
        self._null_default = frozenset(c.name for c in table.c if c.default is None and c.server_default is None
                                       and c.nullable and not c.primary_key)
        self.scope = tuple(scope)
        self.order = tuple(order)
        self.key = tuple(key)
        self._has_etag = "etag" in table.c
        #: Statements built once and reused (SQLAlchemy then also reuses their compiled form).
        self._statements: dict[tuple[Any, ...], Any] = {}

    def refused(self, duplicate: Duplicate) -> bool:
        """Whether ``duplicate`` is an insert into this collection that one of its unique keys refused."""
        return duplicate.table == self.table.name

    # -- reads -----------------------------------------------------------------------------

    def _scoped(self, scope: Sequence[Any]) -> list[sa.ColumnElement[bool]]:
        return [self.table.c[name] == value for name, value in zip(self.scope, scope, strict=True)]

    def record(self, row: Any) -> Record:
        """A Record from a row of this table (for callers that ran their own select)."""
        mapping = row._mapping
        return Record(mapping["pk"], None, mapping.get("etag", ""), mapping.get("last_modified"), mapping,
                      encoded=mapping["body"])

    def _statement(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def get(self, conn: Connection, scope: Sequence[Any], key: Sequence[str], *, for_update: bool = False) -> Record | None:
        row = self._get_statement(for_update).first(conn, self._get_params(scope, key))
        return self.record(row) if row else None

    def _get_statement(self, for_update: bool) -> Prepared:
        def build() -> Prepared:
            names = self.scope + self.key
            query = sa.select(self.table).where(*[self.table.c[n] == sa.bindparam(f"b_{n}") for n in names])
            return Prepared(query.with_for_update() if for_update else query)

        return self._statement(("get", for_update), build)  # type: ignore[no-any-return]

    def _get_params(self, scope: Sequence[Any], key: Sequence[str]) -> dict[str, Any]:
        params = {f"b_{n}": v for n, v in zip(self.scope, scope, strict=True)}
        params.update((f"b_{n}", v.lower()) for n, v in zip(self.key, key, strict=True))
        return params

    @staticmethod
    def decode(body: str | bytes) -> Json:
        return _decode(body)

    def get_by_pk(self, conn: Connection, pk: int, *, for_update: bool = False) -> Record | None:
        def build() -> sa.Select:
            query = sa.select(self.table).where(self.table.c.pk == sa.bindparam("b_pk"))
            return Prepared(query.with_for_update() if for_update else query)

        row = self._statement(("get_by_pk", for_update), build).first(conn, {"b_pk": pk})
        return self.record(row) if row else None

    def page(
        self,
        conn: Connection,
        scope: Sequence[Any],
        bound_filter: Any,
        after: Sequence[str] | None,
        limit: int,
    ) -> list[Record]:
        """Up to ``limit`` records ordered by the key, after the keyset position ``after``, that match
        ``bound_filter`` (a bound OData ``$filter`` tree, compiled here to SQL on indexed columns)."""
        cols = [self.table.c[name] for name in self.order]
        cond = self._scoped(scope)
        if bound_filter is not None:
            cond.append(compile_filter(bound_filter, self.filters))
        if after:
            cond.append(sa.tuple_(*cols) > sa.tuple_(*after) if len(cols) > 1 else cols[0] > after[0])
        listed = self.table.c if self.listed is None else [self.table.c[name] for name in self.listed]
        query = sa.select(*listed).where(*cond).order_by(*cols).limit(limit)
        return [self.record(row) for row in conn.execute(query).all()]

    def existing_keys(self, conn: Connection, scope: Sequence[Any], keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` exist in ``scope``: one unique-index probe per key, whatever the statistics.

        On PostgreSQL a plain ``key IN (...)`` lets the planner probe only the scope's part of the
        index and filter the keys, which it does while the table has no statistics yet (a fresh
        database before autovacuum's first ANALYZE): every batch of AddTaskCollection then read
        all the job's rows (6 ms a batch at 30,000 tasks, growing with the job). A lateral
        subquery with LIMIT 1 per key cannot be planned that way.
        """
        column = self.table.c[self.key[-1]]
        if conn.dialect.name == "postgresql":
            where = " AND ".join([f"t.{n} = :b_{n}" for n in self.scope] + [f"t.{column.name} = k.key"])
            query = self._statement(("existing_keys", "lateral"), lambda: Prepared(sa.text(
                f"SELECT k.key FROM unnest(CAST(:b_keys AS text[])) AS k(key) CROSS JOIN LATERAL "
                f"(SELECT 1 FROM {self.table.name} t WHERE {where} LIMIT 1) AS hit"
            ).columns(sa.column("key", sa.String))))
        else:
            query = self._statement(("existing_keys",), lambda: Prepared(sa.select(column).where(
                *[self.table.c[n] == sa.bindparam(f"b_{n}") for n in self.scope],
                column.in_(sa.bindparam("b_keys", expanding=True)))))
        params: dict[str, Any] = {f"b_{n}": v for n, v in zip(self.scope, scope, strict=True)}
        wanted = list({k.lower() for k in keys})
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            found.update(row[0] for row in query.rows(conn, {**params, "b_keys": wanted[start : start + 500]}))
        return found

    def count(self, conn: Connection, scope: Sequence[Any]) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(self.table).where(*self._scoped(scope))).scalar_one()

    # -- writes ----------------------------------------------------------------------------

    def _values(self, body: Json, now: datetime, *, update: bool = False, touch: bool = True) -> dict[str, Any]:
        if update and self._project_changes is not None:
            values = self._project_changes(body)
        else:
            values = self.project(body)
            if update:
                for name in self.fixed:
                    del values[name]
        values["body"] = _encode(body).decode()
        if self._has_etag and touch:
            values["etag"] = clock.new_etag()
            values["last_modified"] = clock.naive(now)
        return values

    def insert(
        self, conn: Connection, scope: Sequence[Any], body: Json, now: datetime, extra: Mapping[str, Any] | None = None
    ) -> Record:
        """Insert a body; ``extra`` sets columns that are not derived from it (scheduler state)."""
        values = {**dict(zip(self.scope, scope, strict=True)), **self._values(body, now), **(extra or {})}
        pk = conn.execute(self.table.insert().values(**values).returning(self.table.c.pk)).scalar_one()
        return Record(pk, body, values.get("etag", ""), now, values)

    def insert_many(self, conn: Connection, scope: Sequence[Any], bodies: Sequence[Json], now: datetime) -> list[Record]:
        scoped = dict(zip(self.scope, scope, strict=True))
        rows = []
        etags = clock.new_etags(len(bodies)) if self._has_etag else None
        stamp = clock.naive(now)
        for i, body in enumerate(bodies):
            row = self.project(body)
            row.update(scoped)
            row["body"] = _encode(body).decode()
            if etags is not None:
                row["etag"] = etags[i]
                row["last_modified"] = stamp
            rows.append(row)
        if not (conn.dialect.name == "postgresql" and len(rows) > 1 and self._insert_columns(conn, rows)):
            self._insert_grouped(conn, rows)
        return [Record(0, body, row.get("etag", ""), now, row) for body, row in zip(bodies, rows)]

    def _insert_grouped(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """One executemany per set of non-NULL columns (NULL columns are left to their default)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            bound = {name: value for name, value in row.items() if value is not None or name not in self._null_default}
            groups.setdefault(tuple(bound), []).append(bound)
        for names, group in groups.items():
            statement = self._statement(("insert", names), lambda: Prepared(
                self.table.insert().values({name: sa.bindparam(name) for name in names})))
            statement.run_many(conn, group)

    def _insert_columns(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Insert ``rows`` as column arrays in one statement (PostgreSQL), unless a row leaves out a
        column with a default of its own (a NULL there would not be that default): False then."""
        first = rows[0].keys()
        if all(row.keys() == first for row in rows):   # the usual case: one projection, same columns
            names = tuple(first)
        else:
            names = tuple(dict.fromkeys(name for row in rows for name in row))
            if any(name not in row and name not in self._null_default for row in rows for name in names):
                return False
        self._statement(("insert_columns", names), lambda: ColumnsInsert(self.table, names, conn.dialect)).run(conn, rows)
        return True

    def update(
        self, conn: Connection, record: Record, body: Json, now: datetime, extra: Mapping[str, Any] | None = None,
        *, touch: bool = True,
    ) -> Record:
        """Store a new body; ``touch`` False keeps the ETag and Last-Modified (a change the resource's
        own data does not count, such as a job schedule's next run time)."""
        values = {**self._values(body, now, update=True, touch=touch), **(extra or {})}
        self.set_columns(conn, record.pk, **values)
        if not touch:
            return Record(record.pk, body, record.etag, record.last_modified, {**record.row, **values})
        return Record(record.pk, body, values.get("etag", ""), now, {**record.row, **values})

    def update_many(
        self, conn: Connection, changes: Sequence[tuple[Record, Json, Mapping[str, Any]]], now: datetime
    ) -> list[Record]:
        """Store many new bodies, one executemany per set of columns (usually one for the batch).

        ``extra`` sets columns outside the body; a column whose new value equals the one
        the record was read with is left out (an unchanged indexed column costs nothing), so
        records must be current (read in this transaction and not changed since).
        Statements are built once per set of columns and reused.
        """
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
        records: list[Record] = []
        for record, body, extra in changes:
            values = {**self._values(body, now, update=True), **extra}
            row = record.row
            changed = {name: value for name, value in values.items() if name not in row or row[name] != value}
            params, nulls = _bound(changed)
            groups.setdefault((tuple(params), nulls), []).append(params)
            params["b_pk"] = record.pk
            records.append(Record(record.pk, body, values.get("etag", ""), now, {**row, **values}))
        for (names, nulls), params_list in groups.items():
            self._update_statement(tuple(name[2:] for name in names), nulls).run_many(conn, params_list)
        return records

    def _update_statement(self, names: tuple[str, ...], nulls: tuple[str, ...] = ()) -> Prepared:
        """UPDATE by pk of ``names`` (parameters ``b_pk`` and ``b_<name>``) and of ``nulls`` to NULL."""
        def build() -> Prepared:
            values: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in names}
            values.update((name, sa.null()) for name in nulls)
            return Prepared(self.table.update().where(self.table.c.pk == sa.bindparam("b_pk")).values(values))

        return self._statement(("update", names, nulls), build)

    def set_columns(self, conn: Connection, pk: int, **values: Any) -> None:
        """Change non-body columns only (counters, assignments): no new ETag."""
        params, nulls = _bound(values)
        params["b_pk"] = pk
        self._update_statement(tuple(name[2:] for name in params if name != "b_pk"), nulls).write(conn, params)

    def delete(self, conn: Connection, pk: int) -> None:
        conn.execute(self.table.delete().where(self.table.c.pk == pk))


def _bound(values: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Parameters ``b_<name>`` for the non-NULL values, and the names set to NULL.

    A NULL goes into the SQL text instead of a parameter: Python's sqlite3 binds ``None``
    through its adapter lookup (~1,000 instructions a value), the other types directly.
    """
    params: dict[str, Any] = {}
    nulls: list[str] = []
    for name, value in values.items():
        if value is None:
            nulls.append(name)
        else:
            params[f"b_{name}"] = value
    return params, tuple(nulls)


# -- the tables' projections ----------------------------------------------------------------


def _pool_columns(body: Json) -> dict[str, Any]:
    return {
        "id": body["id"],
        "id_key": body["id"].lower(),
        "state": body["state"],
        "allocation_state": body["allocationState"],
        "vm_size": body["vmSize"].lower(),
        "enable_auto_scale": bool(body.get("enableAutoScale")),
        "enable_inter_node_communication": bool(body.get("enableInterNodeCommunication")),
        "creation_time": _wire_time(body, "creationTime"),
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
        "allocation_state_transition_time": _wire_time(body, "allocationStateTransitionTime"),
    }


def _job_columns(body: Json) -> dict[str, Any]:
    return {
        "id": body["id"],
        "id_key": body["id"].lower(),
        "state": body["state"],
        "pool_id_key": _key(body.get("executionInfo", {}).get("poolId")),
        "priority": body.get("priority", 0),
        "creation_time": _wire_time(body, "creationTime"),
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
        "end_time": _wire_time(body, "executionInfo", "endTime"),
        "has_preparation": "jobPreparationTask" in body,
    }


def _job_schedule_columns(body: Json) -> dict[str, Any]:
    return {
        "id": body["id"],
        "id_key": body["id"].lower(),
        "state": body["state"],
        "creation_time": _wire_time(body, "creationTime"),
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
        "end_time": _wire_time(body, "executionInfo", "endTime"),
        "do_not_run_until": _wire_time(body, "schedule", "doNotRunUntil"),
        "do_not_run_after": _wire_time(body, "schedule", "doNotRunAfter"),
    }


def _certificate_columns(body: Json) -> dict[str, Any]:
    return {
        "id_key": f"{body['thumbprintAlgorithm']}-{body['thumbprint']}".lower(),
        "state": body["state"],
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
    }


def _usage_columns(body: Json) -> dict[str, Any]:
    return {
        "pool_id_key": body["poolId"].lower(),
        "interval_key": body["startTime"],
        "interval_start": _wire_time(body, "startTime"),
    }


def _task_columns(body: Json) -> dict[str, Any]:
    return {
        "id": body["id"],
        "id_key": body["id"].lower(),
        "required_slots": body.get("requiredSlots", 1),
        "creation_time": _wire_time(body, "creationTime"),
        **_task_changes(body),
    }


def _task_changes(body: Json) -> dict[str, Any]:
    """The task columns an update can change (a task's id, requiredSlots and creationTime never do)."""
    info = body.get("executionInfo", {})
    end = _wire_time(info, "endTime")
    return {
        "state": body["state"],
        "result": info.get("result"),
        "exit_code": info.get("exitCode"),
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
        "start_time": _wire_time(info, "startTime"),
        "end_time": end,
        "retain_until": retained_until(body, end),
    }


def _node_columns(body: Json) -> dict[str, Any]:
    return {
        "id": body["id"],
        "id_key": body["id"].lower(),
        "dedicated": body.get("isDedicated", True),
        "state": body["state"],
        "scheduling_state": body.get("schedulingState", "enabled"),
        "state_transition_time": _wire_time(body, "stateTransitionTime"),
        "last_boot_time": _wire_time(body, "lastBootTime"),
        "allocation_time": _wire_time(body, "allocationTime"),
        **_execution_columns("start_task", body.get("startTaskInfo")),
    }


def _execution_columns(prefix: str, info: Json | None) -> dict[str, Any]:
    info = info or {}
    return {
        f"{prefix}_state": info.get("state"),
        f"{prefix}_start_time": _wire_time(info, "startTime"),
        f"{prefix}_end_time": _wire_time(info, "endTime"),
        f"{prefix}_exit_code": info.get("exitCode"),
        f"{prefix}_result": info.get("result"),
    }


def _prep_release_columns(body: Json) -> dict[str, Any]:
    return {
        "pool_id_key": body["poolId"].lower(),
        "node_id_key": body["nodeId"].lower(),
        **_execution_columns("prep", body.get("jobPreparationTaskExecutionInfo")),
        **_execution_columns("release", body.get("jobReleaseTaskExecutionInfo")),
    }


POOLS = Collection(schema.pools, _pool_columns, scope=("account",), fixed=("id", "id_key", "creation_time", "vm_size"),
                   filters={**FILTER_COLUMNS["Pool_List"], **FILTER_COLUMNS["Account_ListPoolNodeCounts"]})
JOBS = Collection(schema.jobs, _job_columns, scope=("account",), fixed=("id", "id_key", "creation_time"),
                  filters=FILTER_COLUMNS["Job_List"])
#: The jobs a job schedule created (Job_ListFromJobSchedule): the same rows, scoped by their schedule.
SCHEDULED_JOBS = Collection(schema.jobs, _job_columns, scope=("account", "job_schedule_key"),
                            fixed=("id", "id_key", "creation_time"), filters=FILTER_COLUMNS["Job_List"])
JOB_SCHEDULES = Collection(schema.job_schedules, _job_schedule_columns, scope=("account",),
                           fixed=("id", "id_key", "creation_time"), filters=FILTER_COLUMNS["JobSchedule_List"])
CERTIFICATES = Collection(schema.certificates, _certificate_columns, scope=("account",), fixed=("id_key",),
                          filters={"state": schema.certificates.c.state,
                                   "stateTransitionTime": schema.certificates.c.state_transition_time})
#: Pool usage per aggregation interval, listed by interval then pool (core seconds in a column of their own).
POOL_USAGE = Collection(schema.pool_usage, _usage_columns, scope=("account",), order=("interval_key", "pool_id_key"),
                        key=("interval_key", "pool_id_key"), fixed=("pool_id_key", "interval_key", "interval_start"),
                        filters={"poolId": schema.pool_usage.c.pool_id_key,
                                 "startTime": schema.pool_usage.c.interval_start})
TASKS = Collection(schema.tasks, _task_columns, scope=("job_pk",),
                   fixed=("id", "id_key", "creation_time", "required_slots"), project_changes=_task_changes,
                   listed=("pk", "id_key", "etag", "last_modified", "body"), filters=FILTER_COLUMNS["Task_List"])
NODES = Collection(schema.nodes, _node_columns, scope=("account", "pool_id_key"), fixed=("id", "id_key", "dedicated"),
                   filters=FILTER_COLUMNS["ComputeNode_List"])
PREP_RELEASE = Collection(
    schema.prep_release,
    _prep_release_columns,
    scope=("job_pk",),
    order=("pool_id_key", "node_id_key"),
    key=("pool_id_key", "node_id_key"),
    filters=FILTER_COLUMNS["Job_ListPreparationAndReleaseTaskStatus"],
)


def adjust_counters(conn: Connection, job_pk: int, change: Mapping[str, int]) -> None:
    """Apply task-count deltas to the job row (same transaction as the task change)."""
    if not change:
        return
    names = tuple(sorted(change))
    statement = _COUNTER_UPDATES.get(names)
    if statement is None:
        table = schema.jobs
        statement = _COUNTER_UPDATES[names] = Prepared(table.update().where(
            table.c.pk == sa.bindparam("b_pk")).values({name: table.c[name] + sa.bindparam(f"d_{name}") for name in names}))
    params = {f"d_{name}": change[name] for name in names}
    params["b_pk"] = job_pk
    statement.write(conn, params)


_COUNTER_UPDATES: dict[tuple[str, ...], Prepared] = {}
_COUNTERS = schema.jobs
_COUNTERS_BY_ID = Prepared(sa.select(*[_COUNTERS.c[n] for n in schema.COUNTER_COLUMNS])
                           .where(_COUNTERS.c.account == sa.bindparam("b_account"),
                                  _COUNTERS.c.id_key == sa.bindparam("b_id")))
_COUNTERS_BY_PK = Prepared(sa.select(*[_COUNTERS.c[n] for n in schema.COUNTER_COLUMNS])
                           .where(_COUNTERS.c.pk == sa.bindparam("b_pk")))


def counters_by_id(conn: Connection, account: str, job_id: str) -> dict[str, int] | None:
    """The job's counters by its id, in one indexed read of just those columns (None: no such job)."""
    row = _COUNTERS_BY_ID.first(conn, {"b_account": account, "b_id": job_id.lower()})
    return row._mapping if row is not None else None


async def counters_by_id_on_loop(reads: LoopReads, account: str, job_id: str) -> dict[str, int] | None:
    """:func:`counters_by_id` on the event loop (PostgreSQL)."""
    row = await reads.first(_COUNTERS_BY_ID, {"b_account": account, "b_id": job_id.lower()})
    return row._mapping if row is not None else None


def read_counters(conn: Connection, job_pk: int) -> dict[str, int]:
    row = _COUNTERS_BY_PK.first(conn, {"b_pk": job_pk})
    assert row is not None, f"job {job_pk} is gone"
    return row._mapping
