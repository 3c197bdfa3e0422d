"""The instances of multi-instance tasks (schema ``subtasks``): one row per instance 0..N-1 of a task's
current attempt (row 0, the primary's, only records its coordination: its run is the task's). A row with a
``run_id`` holds its node (one slot); its body is the SubtaskInformation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import msgspec
import sqlalchemy as sa

from .engine import Connection
from .schema import subtasks as _s

Json = dict[str, Any]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


@dataclass(slots=True)
class Subtask:
    pk: int
    task_pk: int
    instance: int
    node_pk: int | None
    run_id: str | None
    coordinated: bool
    body: Json


def _subtask(row: Any) -> Subtask:
    return Subtask(row.pk, row.task_pk, row.instance, row.node_pk, row.run_id, bool(row.coordinated),
                   _decode(row.body))


def replace(conn: Connection, task_pk: int, rows: Sequence[Subtask]) -> None:
    """The subtasks of the task's new attempt (those of an earlier attempt go)."""
    conn.execute(sa.delete(_s).where(_s.c.task_pk == task_pk))
    if rows:
        conn.execute(sa.insert(_s), [{"task_pk": task_pk, "instance": row.instance, "node_pk": row.node_pk,
                                      "run_id": row.run_id, "coordinated": row.coordinated,
                                      "body": _encode(row.body).decode()} for row in rows])


def of_task(conn: Connection, task_pk: int, *, for_update: bool = False) -> list[Subtask]:
    query = sa.select(_s).where(_s.c.task_pk == task_pk).order_by(_s.c.instance)
    return [_subtask(row) for row in conn.execute(query.with_for_update() if for_update else query)]


def by_run(conn: Connection, run_id: str) -> Subtask | None:
    """The subtask whose current run is ``run_id`` (locked)."""
    row = conn.execute(sa.select(_s).where(_s.c.run_id == run_id).with_for_update()).first()
    return _subtask(row) if row else None


def save(conn: Connection, subtask: Subtask) -> None:
    conn.execute(sa.update(_s).where(_s.c.pk == subtask.pk).values(
        node_pk=subtask.node_pk, run_id=subtask.run_id, coordinated=subtask.coordinated,
        body=_encode(subtask.body).decode()))


def run_on_node(conn: Connection, task_pk: int, node_pk: int) -> str | None:
    """The run of the task's subtask on the node, if one runs there."""
    return conn.execute(sa.select(_s.c.run_id).where(_s.c.task_pk == task_pk, _s.c.node_pk == node_pk,
                                                     _s.c.run_id.is_not(None))).scalar()
