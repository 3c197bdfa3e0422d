"""HTTP conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since).

A read whose condition fails answers 304, a write 412, both ``ConditionNotMet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .errors import condition_not_met


@dataclass(frozen=True, slots=True)
class Conditions:
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.if_match or self.if_none_match or self.if_modified_since or self.if_unmodified_since)


NONE = Conditions()


def _matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or etag.strip('"') in tags


def check(conditions: Conditions, etag: str, last_modified: datetime, *, read: bool) -> None:
    """Raise ConditionNotMet (304 on a read, 412 on a write) when a condition does not hold."""
    if conditions.empty:
        return
    modified = last_modified.replace(microsecond=0)
    failed = (
        (conditions.if_match is not None and not _matches(conditions.if_match, etag))
        or (conditions.if_none_match is not None and _matches(conditions.if_none_match, etag))
        or (conditions.if_modified_since is not None and modified <= conditions.if_modified_since)
        or (conditions.if_unmodified_since is not None and modified > conditions.if_unmodified_since)
    )
    if failed:
        raise condition_not_met(read=read)
