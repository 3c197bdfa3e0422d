"""Responses on the wire: JSON bodies, the standard headers, resources, lists and errors."""

from __future__ import annotations

import base64
import hmac
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode

import msgspec
from starlette.responses import Response

from ..domain import clock
from ..domain.errors import BatchError, invalid_query
from ..services import Record
from .request import ApiRequest

Json = dict[str, Any]

JSON_TYPE = "application/json;odata=minimalmetadata"
_encode = msgspec.json.Encoder().encode


def base_headers(req: ApiRequest) -> dict[str, str]:
    headers = {"request-id": req.request_id, "DataServiceVersion": "3.0"}
    client_id = req.headers.get("client-request-id") or req.headers.get("x-ms-client-request-id")
    if client_id and req.headers.get("return-client-request-id", "").lower() == "true":
        headers["client-request-id"] = client_id
    return headers


def json_response(req: ApiRequest, body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = base_headers(req)
    if headers:
        all_headers.update(headers)
    if req.method == "HEAD":
        return Response(status_code=status, headers=all_headers)
    return Response(_encode(body), status_code=status, headers=all_headers, media_type=JSON_TYPE)


def empty(req: ApiRequest, status: int, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = base_headers(req)
    if headers:
        all_headers.update(headers)
    return Response(status_code=status, headers=all_headers)


def error_response(req: ApiRequest, error: BatchError) -> Response:
    body = error.to_wire()
    body["message"]["value"] += f"\nRequestId:{req.request_id}\nTime:{clock.to_wire(clock.utcnow())}"
    if error.status == 304 or req.method == "HEAD":
        return empty(req, error.status)
    return json_response(req, body, error.status)


def resource_headers(record: Record) -> dict[str, str]:
    return {"ETag": record.etag, "Last-Modified": clock.to_http(record.last_modified)}


def created(req: ApiRequest, url: str, record: Record) -> Response:
    return empty(req, 201, {**resource_headers(record), "Location": url, "DataServiceId": url})


def changed(req: ApiRequest, status: int, url: str, record: Record | None = None) -> Response:
    headers = {"DataServiceId": url}
    if record is not None:
        headers.update(resource_headers(record))
    return empty(req, status, headers)


# -- representations ------------------------------------------------------------------------


#: The operations whose spec defines ``$select``; elsewhere (supported images, node counts, files,
#: applications) it is ignored, so their required properties are never cut away.
SELECTABLE = frozenset(
    """Certificate_List Certificate_Get JobSchedule_Get JobSchedule_List Job_Get Job_List
    Job_ListFromJobSchedule Job_ListPreparationAndReleaseTaskStatus Pool_List Pool_Get Task_List Task_Get
    Task_ListSubtasks ComputeNode_Get ComputeNode_List ComputeNodeExtension_Get ComputeNodeExtension_List""".split()
)


def parse_select(req: ApiRequest) -> frozenset[str] | None:
    raw = req.query.get("$select")
    if raw is None or (req.operation_id and req.operation_id not in SELECTABLE):
        return None
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise invalid_query("$select", raw, "The $select clause names no property.")
    return names


def check_expand(req: ApiRequest) -> bool:
    """Whether ``$expand=stats`` was asked for (the only expansion the API defines)."""
    raw = req.query.get("$expand")
    if raw is None:
        return False
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names or names - {"stats"}:
        raise invalid_query("$expand", raw, "Only 'stats' can be expanded.")
    return True


def apply_select(body: Json, select: frozenset[str] | None) -> Json:
    if select is None:
        return body
    tops = {name.split("/", 1)[0] for name in select}
    return {k: v for k, v in body.items() if k in tops}


def represent(record: Record, url: str, extra: Mapping[str, Any] | None = None, *, owned: bool = False) -> Json:
    """A resource as Get returns it: the stored body plus url, eTag and lastModified.

    ``owned``: the record is the response's alone (a list page just read), so its body is
    completed in place instead of copied.
    """
    body = record.body if owned else dict(record.body)
    body["url"] = url
    body["eTag"] = record.etag
    body["lastModified"] = record.last_modified_wire
    if extra:
        body.update(extra)
    return body


def entity(req: ApiRequest, metadata: str, body: Json, record: Record | None = None) -> Response:
    """200 with one resource, its ETag and Last-Modified headers."""
    out = {"odata.metadata": f"{req.base_url}/$metadata#{metadata}", **apply_select(body, parse_select(req))}
    return json_response(req, out, 200, resource_headers(record) if record else None)


# -- lists ----------------------------------------------------------------------------------


_MAX_TOKEN_CHARS = 8192


def _token_tag(req: ApiRequest, payload: str) -> str:
    """A MAC binding a token to the account (keyed by its key) and the list it came from."""
    scope = f"{req.account}\n{req.path.lower()}\n{payload}".encode()
    return base64.urlsafe_b64encode(hmac.digest(req.token_key, scope, "sha256")[:18]).decode()


def encode_token(position: Iterable[str], req: ApiRequest) -> str:
    """An opaque ``$skiptoken``: the keyset position, signed for ``req``'s account and list when given."""
    payload = base64.urlsafe_b64encode(_encode(list(position))).decode().rstrip("=")
    return f"{payload}.{_token_tag(req, payload)}"


def decode_token(token: str, req: ApiRequest) -> tuple[str, ...]:
    """The position in a ``$skiptoken``; 400 for anything this server did not issue.

    The token must carry the tag :func:`encode_token` gave it for the same
    account and list path, so a forged, altered or foreign token (another list's position
    may have another arity) never reaches the store.
    """
    payload, dot, tag = token.partition(".")
    try:
        if len(token) > _MAX_TOKEN_CHARS:
            raise ValueError("too long")
        if not (dot and hmac.compare_digest(tag.encode(), _token_tag(req, payload).encode())):
            raise ValueError("bad tag")
        padded = payload + "=" * (-len(payload) % 4)
        value = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) and v and "\x00" not in v for v in value)
        ):
            return tuple(value)
    except (ValueError, msgspec.DecodeError):
        pass
    raise invalid_query("$skiptoken", token[:200], "The skip token is not one this server issued.")


def next_link(req: ApiRequest, position: tuple[str, ...] | None) -> str | None:
    if position is None:
        return None
    query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
    query["$skiptoken"] = encode_token(position, req)
    query.setdefault("api-version", req.api_version)
    return f"{req.base_url}{req.path}?{urlencode(query, safe='$,')}"


def listing(
    req: ApiRequest,
    metadata: str,
    items: Iterable[Json],
    position: tuple[str, ...] | None,
    shape: Callable[[Json], Json] | None = None,
) -> Response:
    select = parse_select(req)
    value = [apply_select(shape(item) if shape else item, select) for item in items]
    body: Json = {"odata.metadata": f"{req.base_url}/$metadata#{metadata}", "value": value}
    link = next_link(req, position)
    if link:
        body["odata.nextLink"] = link
    return json_response(req, body)
