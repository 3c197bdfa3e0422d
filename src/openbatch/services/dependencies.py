"""Task dependencies (dependsOn): may a task run yet?"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from ..domain.exit_conditions import satisfies_dependents
from ..store.engine import Connection
from ..store.task_queries import all_tasks_of_job, tasks_by_keys

Json = dict[str, Any]

#: Ranges holding more ids than this in all are checked by scanning the job's tasks instead of id by
#: id: no dependency list makes the server build a list in proportion to the numbers in it.
_RANGE_BY_ID_LIMIT = 5_000


def _by_id(depends_on: Json) -> bool:
    """Whether the ranges are small enough to look their ids up one by one."""
    ranges = depends_on.get("taskIdRanges") or ()
    return sum(rng["end"] - rng["start"] + 1 for rng in ranges) <= _RANGE_BY_ID_LIMIT


def _ids(depends_on: Json) -> Iterable[str]:
    yield from (i.lower() for i in depends_on.get("taskIds") or ())
    if _by_id(depends_on):
        for rng in depends_on.get("taskIdRanges") or ():
            yield from (str(i) for i in range(rng["start"], rng["end"] + 1))


def unmet_dependencies(conn: Connection, job_pk: int, depends_on: Json) -> bool:
    """True while some dependency has not completed in a way that satisfies it.

    A dependency that does not exist (yet) is unmet; one that completed with a
    ``block`` dependencyAction keeps the task waiting for good.
    """
    wanted = list(dict.fromkeys(_ids(depends_on)))
    found: set[str] = set()
    for row in tasks_by_keys(conn, job_pk, wanted):
        found.add(row.id_key)
        if row.state != "completed" or not satisfies_dependents(msgspec.json.decode(row.body)):
            return True
    if len(found) < len(wanted):
        return True
    ranges = depends_on.get("taskIdRanges") or ()
    return bool(ranges) and not _by_id(depends_on) and _open_in_ranges(conn, job_pk, ranges)


def _open_in_ranges(conn: Connection, job_pk: int, ranges: Iterable[Json]) -> bool:
    """Whether a task of the job whose numeric id falls in a range has not completed to satisfy it
    (or an id of a range has no task at all: then it is unmet too)."""
    spans = [(rng["start"], rng["end"]) for rng in ranges]
    seen = 0
    for row in all_tasks_of_job(conn, job_pk):
        number = int(row.id_key) if row.id_key.isdigit() else -1
        if str(number) == row.id_key and any(start <= number <= end for start, end in spans):
            if row.state != "completed" or not satisfies_dependents(msgspec.json.decode(row.body)):
                return True
            seen += 1
    # Ids with leading zeros never match a range (Azure: ranges name the ids "1".."9", not "01").
    return seen < sum(end - start + 1 for start, end in _merged(spans))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
