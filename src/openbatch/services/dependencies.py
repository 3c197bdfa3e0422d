"""Task dependencies (dependsOn): may a task run yet?"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..domain.exit_conditions import satisfies_dependents
from ..store import schema

Json = dict[str, Any]

#: A range larger than this is checked by scanning the job's unfinished tasks instead of by id.
_RANGE_BY_ID_LIMIT = 5_000


def _ids(depends_on: Json) -> Iterable[str]:
    yield from (i.lower() for i in depends_on.get("taskIds") or ())
    for rng in depends_on.get("taskIdRanges") or ():
        if rng["end"] - rng["start"] < _RANGE_BY_ID_LIMIT:
            yield from (str(i) for i in range(rng["start"], rng["end"] + 1))


def unmet_dependencies(conn: Connection, job_pk: int, depends_on: Json) -> bool:
    """True while some dependency has not completed in a way that satisfies it.

    A dependency that does not exist (yet) is unmet; one that completed with a
    ``block`` dependencyAction keeps the task waiting for good.
    """
    t = schema.tasks
    wanted = list(dict.fromkeys(_ids(depends_on)))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = conn.execute(sa.select(t.c.id_key, t.c.state, t.c.body).where(t.c.job_pk == job_pk, t.c.id_key.in_(chunk)))
        for row in rows:
            found.add(row.id_key)
            if row.state != "completed" or not satisfies_dependents(msgspec.json.decode(row.body)):
                return True
    if len(found) < len(wanted):
        return True
    for rng in depends_on.get("taskIdRanges") or ():
        if rng["end"] - rng["start"] >= _RANGE_BY_ID_LIMIT and _open_in_range(conn, job_pk, rng["start"], rng["end"]):
            return True
    return False


def _open_in_range(conn: Connection, job_pk: int, start: int, end: int) -> bool:
    t = schema.tasks
    rows = conn.execute(sa.select(t.c.id_key, t.c.state, t.c.body).where(t.c.job_pk == job_pk))
    for row in rows:
        if row.id_key.isdigit() and start <= int(row.id_key) <= end:
            if row.state != "completed" or not satisfies_dependents(msgspec.json.decode(row.body)):
                return True
    return False
