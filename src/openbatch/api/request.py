"""One API request after routing and authentication: what handlers read from it."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

from ..domain import clock
from ..domain.conditions import Conditions
from ..domain.errors import invalid_body, invalid_header, invalid_query, out_of_range_query
from ..domain.models import Model, decode
from ..services.calls import call

T = TypeVar("T", bound=Model)
R = TypeVar("R")

DEFAULT_TIMEOUT = 30
INT32_MAX = 2**31 - 1
#: A JSON ``\u0000`` escape (an odd run of backslashes before ``u0000``); no stored text can hold NUL.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters keyed by lower-cased name (azure-batch 15 sends ``timeOut``); first value wins."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        params.setdefault(name.lower(), value)
    return params


def new_request_id() -> str:
    """A version-4 GUID naming a request in its response and the logs. It needs to be unique, not secret:
    from the process's pseudo-random generator (seeded from the OS) rather than the OS's, a system call
    per request (~3 % of the server's CPU under Get Task Counts)."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str
    account: str = ""
    api_version: str = ""
    params: dict[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=new_request_id)
    operation_id: str = ""  # set once routed
    token_key: bytes = b""  # the account's key: signs the $skiptoken values this request hands out
    services: Any = None  # openbatch.services.Services, set by the app

    # -- query ------------------------------------------------------------------------------

    def int_query(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query.get(name.lower())
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_query(name, raw, "The value must be an integer.") from None
        if not low <= value <= high:
            raise out_of_range_query(name, raw, f"The value must be between {low} and {high}.")
        return value

    def time_query(self, name: str) -> datetime | None:
        """An ISO 8601 date-time query parameter (UTC when it names no zone); None when absent."""
        raw = self.query.get(name.lower())
        if raw is None or raw == "":
            return None
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_query(name, raw, "The value must be an ISO 8601 date-time.") from None
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def bool_query(self, name: str, default: bool = False) -> bool:
        raw = self.query.get(name.lower())
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise invalid_query(name, raw, "The value must be true or false.")

    def check_timeout(self) -> None:
        """``timeout`` is validated; any value above the maximum means the maximum (docs)."""
        raw = self.query.get("timeout")
        if raw:
            try:
                if not 1 <= int(raw) <= INT32_MAX:  # the spec's type is int32
                    raise ValueError
            except ValueError:
                raise invalid_query("timeout", raw, "The value must be a positive 32-bit integer.") from None

    # -- headers ----------------------------------------------------------------------------

    def conditions(self) -> Conditions:
        def date(name: str) -> Any:
            raw = self.headers.get(name)
            if raw is None:
                return None
            value = clock.from_http(raw)
            if value is None:
                raise invalid_header(name, raw, "The value is not an RFC 1123 date.")
            return value

        return Conditions(
            if_match=self.headers.get("if-match"),
            if_none_match=self.headers.get("if-none-match"),
            if_modified_since=date("if-modified-since"),
            if_unmodified_since=date("if-unmodified-since"),
        )

    # -- body -------------------------------------------------------------------------------

    def json(self, model: type[T]) -> T:
        if b"\\u0000" in self.body and _JSON_NUL.search(self.body):
            raise invalid_body("The body contains a NUL character (\\u0000) in a string.")
        try:
            return decode(self.body, model)
        except RecursionError:  # msgspec gives up on very deep nesting; that is the client's fault
            raise invalid_body("The body is nested too deeply.") from None

    def optional_json(self, model: type[T]) -> T | None:
        return self.json(model) if self.body.strip() else None

    # -- urls -------------------------------------------------------------------------------

    def url(self, *segments: str) -> str:
        return self.base_url + "".join("/" + segment(s) for s in segments)


#: What ``quote(s, safe="")`` leaves as it is: such segments (most ids) need no quoting.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def segment(value: str) -> str:
    """A path segment percent-encoded as by ``quote(value, safe="")`` (listed items call this per URL)."""
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


#: Calls a use case as it was declared to run (services/calls.py): in a worker thread, or in place.
run = call
