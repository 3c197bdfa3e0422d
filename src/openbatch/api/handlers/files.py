"""File operations on task directories and node file systems.

File operations run on their own few worker threads (:data:`FILE_THREADS`), so however
slow a node's disk or an agent's answer, they never take the threads every other
request needs.
"""

from __future__ import annotations

import asyncio
import re
from functools import partial
from weakref import WeakKeyDictionary
from typing import Any, Awaitable, Callable, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.responses import Response

from ...domain import clock
from ...domain.conditions import check
from ...domain.errors import BatchError
from ...odata import FILTERS, matches, parse_filter
from ...services.files import FileInfo, FileLocation
from ..request import ApiRequest, run
from ..router import operation
from ..wire import base_headers, decode_token, empty, listing

Json = dict[str, Any]
R = TypeVar("R")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")
#: A control character (CR, LF, NUL, ...) in a file path: no file name the API serves has one.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: Worker threads file operations may take at once (per server: per event loop).
FILE_THREADS = 8
_file_threads: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


def run_file_operation(fn: Callable[..., R], *args: Any) -> Awaitable[R]:
    """Run a blocking file operation on the file operations' own threads."""
    loop = asyncio.get_running_loop()
    limiter = _file_threads.get(loop)
    if limiter is None:
        limiter = _file_threads[loop] = CapacityLimiter(FILE_THREADS)
    return anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)


def _file_path(req: ApiRequest) -> str:
    path = req.params["filePath"]
    if _CONTROL_RE.search(path):
        raise BatchError("InvalidUri", "The file path contains a control character (such as CR or LF).",
                         [("FilePath", _CONTROL_RE.sub("?", path))])
    return path


def _task_location(req: ApiRequest) -> Awaitable[FileLocation]:
    return run(req.services.files.task_location, req.account, req.params["jobId"], req.params["taskId"])


def _node_location(req: ApiRequest) -> Awaitable[FileLocation]:
    return run(req.services.files.node_location, req.account, req.params["poolId"], req.params["nodeId"])


def _task_file_url(req: ApiRequest, name: str) -> str:
    return req.url("jobs", req.params["jobId"], "tasks", req.params["taskId"], "files") + "/" + name


def _node_file_url(req: ApiRequest, name: str) -> str:
    return req.url("pools", req.params["poolId"], "nodes", req.params["nodeId"], "files") + "/" + name


def _node_file(info: FileInfo, url: str) -> Json:
    properties: Json = {
        "lastModified": clock.to_wire(info.last_modified),
        "contentLength": info.content_length,
        "contentType": info.content_type,
    }
    if info.creation_time is not None:
        properties["creationTime"] = clock.to_wire(info.creation_time)
    if info.file_mode is not None:
        properties["fileMode"] = info.file_mode
    return {"name": info.name, "url": url, "isDirectory": info.is_directory, "properties": properties}


def _file_headers(info: FileInfo, url: str) -> dict[str, str]:
    headers = {
        "ocp-batch-file-isdirectory": "true" if info.is_directory else "false",
        "ocp-batch-file-url": url,
        "Last-Modified": clock.to_http(info.last_modified),
        "ETag": f"0x{int(info.last_modified.timestamp() * 1e7):X}",
        "Content-Type": info.content_type,
    }
    if info.creation_time is not None:
        headers["ocp-creation-time"] = clock.to_http(info.creation_time)
    if info.file_mode is not None:
        headers["ocp-batch-file-mode"] = info.file_mode
    return headers


def _byte_range(req: ApiRequest) -> tuple[int, int | None]:
    raw = req.headers.get("ocp-range")
    if not raw:
        return 0, None
    found = _RANGE_RE.match(raw.strip())
    if not found or (found.group(2) and int(found.group(2)) < int(found.group(1))):
        raise BatchError("InvalidRange", "The range specified is invalid for the current size of the resource.",
                         [("Range", raw)])
    return int(found.group(1)), int(found.group(2)) if found.group(2) else None


async def _list(req: ApiRequest, operation_id: str, where: FileLocation, url: Callable[[str], str]) -> Response:
    limit = req.int_query("maxresults", 1000, 1, 1000)
    recursive = req.bool_query("recursive")
    text = req.query.get("$filter", "")
    bound = parse_filter(text, FILTERS[operation_id]) if text.strip() else None
    token = req.query.get("$skiptoken")
    after = decode_token(token, req)[0] if token else None
    files = await run_file_operation(req.services.files.list, where, recursive)
    chosen = [f for f in sorted(files, key=lambda f: f.name)
              if (after is None or f.name > after) and (bound is None or matches(bound, lambda _p, f=f: f.name))]
    page, rest = chosen[:limit], chosen[limit:]
    return listing(req, "files", (_node_file(f, url(f.name)) for f in page), (page[-1].name,) if rest else None)


async def _get(req: ApiRequest, where: FileLocation, path: str, url: str, *, content: bool) -> Response:
    info = await run_file_operation(req.services.files.stat, where, path)
    conditions = req.conditions()
    check(conditions, "", info.last_modified, read=True)
    headers = {**base_headers(req), **_file_headers(info, url)}
    if not content:
        headers["Content-Length"] = str(info.content_length)
        return Response(status_code=200, headers=headers)
    start, end = _byte_range(req)
    data = await run_file_operation(req.services.files.read, where, path, start, end)
    return Response(data, status_code=200, headers=headers, media_type=info.content_type)


async def _delete(req: ApiRequest, where: FileLocation) -> Response:
    path = _file_path(req)
    await run_file_operation(req.services.files.delete, where, path, req.bool_query("recursive"))
    return empty(req, 200)


@operation("File_ListFromTask")
async def list_from_task(req: ApiRequest) -> Response:
    return await _list(req, "File_ListFromTask", await _task_location(req), lambda n: _task_file_url(req, n))


@operation("File_GetFromTask")
async def get_from_task(req: ApiRequest) -> Response:
    where = await _task_location(req)
    path = _file_path(req)
    return await _get(req, where, path, _task_file_url(req, path), content=True)


@operation("File_GetPropertiesFromTask")
async def properties_from_task(req: ApiRequest) -> Response:
    where = await _task_location(req)
    path = _file_path(req)
    return await _get(req, where, path, _task_file_url(req, path), content=False)


@operation("File_DeleteFromTask")
async def delete_from_task(req: ApiRequest) -> Response:
    return await _delete(req, await _task_location(req))


@operation("File_ListFromComputeNode")
async def list_from_node(req: ApiRequest) -> Response:
    return await _list(req, "File_ListFromComputeNode", await _node_location(req), lambda n: _node_file_url(req, n))


@operation("File_GetFromComputeNode")
async def get_from_node(req: ApiRequest) -> Response:
    where = await _node_location(req)
    path = _file_path(req)
    return await _get(req, where, path, _node_file_url(req, path), content=True)


@operation("File_GetPropertiesFromComputeNode")
async def properties_from_node(req: ApiRequest) -> Response:
    where = await _node_location(req)
    path = _file_path(req)
    return await _get(req, where, path, _node_file_url(req, path), content=False)


@operation("File_DeleteFromComputeNode")
async def delete_from_node(req: ApiRequest) -> Response:
    return await _delete(req, await _node_location(req))
