"""Pure validation helpers shared by the resource rules."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Any, Collection

from .errors import BatchError, invalid_property

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DURATION_RE = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

#: What Azure returns for "no limit" (.NET TimeSpan.MaxValue).
UNLIMITED_DURATION = "P10675199DT2H48M5.4775807S"
SEVEN_DAYS = "P7D"


def check_id(value: str, prop: str = "id") -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise invalid_property(
            prop,
            value,
            "The id may contain only alphanumeric characters, hyphens and underscores, and at most 64 characters.",
        )
    return value


def check_display_name(value: str | None, prop: str = "displayName") -> None:
    if value is not None and len(value) > 1024:
        raise invalid_property(prop, value, "The display name may contain at most 1024 characters.")


def check_range(value: int | None, prop: str, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise invalid_property(prop, value, f"The value must be between {low} and {high}.")


def parse_duration(value: str, prop: str) -> timedelta:
    """Parse an ISO 8601 duration (days, hours, minutes, seconds) as the Batch API uses them."""
    if isinstance(value, str) and len(value) <= 64:
        return _parse_duration_cached(value, prop)  # tasks repeat a few durations (retention, wall clock)
    return _parse_duration(value, prop)


@lru_cache(maxsize=256)
def _parse_duration_cached(value: str, prop: str) -> timedelta:
    return _parse_duration(value, prop)


def _parse_duration(value: str, prop: str) -> timedelta:
    match = _DURATION_RE.fullmatch(value) if isinstance(value, str) and value not in ("P", "PT") else None
    if match is None or value.endswith("T"):
        raise invalid_property(prop, value, "The value is not a valid ISO 8601 duration.")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    try:
        return timedelta(
            days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0)
        )
    except OverflowError:
        raise invalid_property(prop, value, "The duration is out of range.") from None


def check_duration(value: str | None, prop: str, *, minimum: timedelta | None = None, maximum: timedelta | None = None) -> None:
    if value is None:
        return
    span = parse_duration(value, prop)
    if span < timedelta(0):
        raise invalid_property(prop, value, "The duration must not be negative.")
    if minimum is not None and span < minimum:
        raise invalid_property(prop, value, f"The duration must be at least {minimum}.")
    if maximum is not None and span > maximum:
        raise invalid_property(prop, value, f"The duration must be at most {maximum}.")


def check_metadata(items: list | None, prop: str = "metadata") -> None:
    for item in items or ():
        if not item.name:
            raise BatchError("EmptyMetadataKey", "A metadata item name must not be empty.", [("PropertyName", prop)])


#: Application ids pools and tasks may reference. Applications cannot be uploaded to this server yet
#: (Application_List is empty), so any reference is refused, never silently accepted.
AVAILABLE_APPLICATIONS: frozenset[str] = frozenset()


def check_application_packages(references: list[dict[str, Any]] | None,
                               available: Collection[str] = AVAILABLE_APPLICATIONS) -> None:
    """Every referenced application must exist in the account (409 InvalidApplicationPackageReferences)."""
    unknown = [str(ref.get("applicationId", "")) for ref in references or ()
               if ref.get("applicationId") not in available]
    if unknown:
        raise BatchError(
            "InvalidApplicationPackageReferences",
            "One or more of the specified application package references are invalid.",
            [("ApplicationId", app) for app in unknown],
        )
