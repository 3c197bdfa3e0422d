"""Every operation of the Batch API: its method and path, and the handler if implemented.

Handlers register with :func:`operation`; an operation without one answers 501
``NotImplemented`` naming it. Paths are matched on the raw (still percent-encoded)
request path, segment by segment, literals case-insensitively; a trailing
``{filePath}`` takes the rest of the path, so ``wd%2Fout.txt`` and ``wd/out.txt``
both work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import unquote

from starlette.responses import Response

from ..domain.errors import BatchError, not_implemented
from .request import ApiRequest

Handler = Callable[[ApiRequest], Awaitable[Response]]

_N = "/pools/{poolId}/nodes/{nodeId}"
_CERT = "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})"

#: (operationId, method, path) for the 2024-07-01.20.0 spec, plus GetRemoteDesktop from 2023-11-01.18.0.
OPERATIONS: list[tuple[str, str, str]] = [
    ("Application_List", "GET", "/applications"),
    ("Application_Get", "GET", "/applications/{applicationId}"),
    ("Pool_ListUsageMetrics", "GET", "/poolusagemetrics"),
    ("Account_ListSupportedImages", "GET", "/supportedimages"),
    ("Account_ListPoolNodeCounts", "GET", "/nodecounts"),
    ("Certificate_Add", "POST", "/certificates"),
    ("Certificate_List", "GET", "/certificates"),
    ("Certificate_CancelDeletion", "POST", _CERT + "/canceldelete"),
    ("Certificate_Delete", "DELETE", _CERT),
    ("Certificate_Get", "GET", _CERT),
    ("File_DeleteFromTask", "DELETE", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}"),
    ("File_GetFromTask", "GET", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}"),
    ("File_GetPropertiesFromTask", "HEAD", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}"),
    ("File_DeleteFromComputeNode", "DELETE", _N + "/files/{filePath}"),
    ("File_GetFromComputeNode", "GET", _N + "/files/{filePath}"),
    ("File_GetPropertiesFromComputeNode", "HEAD", _N + "/files/{filePath}"),
    ("File_ListFromTask", "GET", "/jobs/{jobId}/tasks/{taskId}/files"),
    ("File_ListFromComputeNode", "GET", _N + "/files"),
    ("JobSchedule_Exists", "HEAD", "/jobschedules/{jobScheduleId}"),
    ("JobSchedule_Delete", "DELETE", "/jobschedules/{jobScheduleId}"),
    ("JobSchedule_Get", "GET", "/jobschedules/{jobScheduleId}"),
    ("JobSchedule_Patch", "PATCH", "/jobschedules/{jobScheduleId}"),
    ("JobSchedule_Update", "PUT", "/jobschedules/{jobScheduleId}"),
    ("JobSchedule_Disable", "POST", "/jobschedules/{jobScheduleId}/disable"),
    ("JobSchedule_Enable", "POST", "/jobschedules/{jobScheduleId}/enable"),
    ("JobSchedule_Terminate", "POST", "/jobschedules/{jobScheduleId}/terminate"),
    ("JobSchedule_Add", "POST", "/jobschedules"),
    ("JobSchedule_List", "GET", "/jobschedules"),
    ("Job_Delete", "DELETE", "/jobs/{jobId}"),
    ("Job_Get", "GET", "/jobs/{jobId}"),
    ("Job_Patch", "PATCH", "/jobs/{jobId}"),
    ("Job_Update", "PUT", "/jobs/{jobId}"),
    ("Job_Disable", "POST", "/jobs/{jobId}/disable"),
    ("Job_Enable", "POST", "/jobs/{jobId}/enable"),
    ("Job_Terminate", "POST", "/jobs/{jobId}/terminate"),
    ("Job_Add", "POST", "/jobs"),
    ("Job_List", "GET", "/jobs"),
    ("Job_ListFromJobSchedule", "GET", "/jobschedules/{jobScheduleId}/jobs"),
    ("Job_ListPreparationAndReleaseTaskStatus", "GET", "/jobs/{jobId}/jobpreparationandreleasetaskstatus"),
    ("Job_GetTaskCounts", "GET", "/jobs/{jobId}/taskcounts"),
    ("Pool_Add", "POST", "/pools"),
    ("Pool_List", "GET", "/pools"),
    ("Pool_Delete", "DELETE", "/pools/{poolId}"),
    ("Pool_Exists", "HEAD", "/pools/{poolId}"),
    ("Pool_Get", "GET", "/pools/{poolId}"),
    ("Pool_Patch", "PATCH", "/pools/{poolId}"),
    ("Pool_DisableAutoScale", "POST", "/pools/{poolId}/disableautoscale"),
    ("Pool_EnableAutoScale", "POST", "/pools/{poolId}/enableautoscale"),
    ("Pool_EvaluateAutoScale", "POST", "/pools/{poolId}/evaluateautoscale"),
    ("Pool_Resize", "POST", "/pools/{poolId}/resize"),
    ("Pool_StopResize", "POST", "/pools/{poolId}/stopresize"),
    ("Pool_UpdateProperties", "POST", "/pools/{poolId}/updateproperties"),
    ("Pool_RemoveNodes", "POST", "/pools/{poolId}/removenodes"),
    ("ComputeNode_AddUser", "POST", _N + "/users"),
    ("ComputeNode_DeleteUser", "DELETE", _N + "/users/{userName}"),
    ("ComputeNode_UpdateUser", "PUT", _N + "/users/{userName}"),
    ("ComputeNode_Get", "GET", _N),
    ("ComputeNode_Reboot", "POST", _N + "/reboot"),
    ("ComputeNode_Reimage", "POST", _N + "/reimage"),
    ("ComputeNode_Start", "POST", _N + "/start"),
    ("ComputeNode_Deallocate", "POST", _N + "/deallocate"),
    ("ComputeNode_DisableScheduling", "POST", _N + "/disablescheduling"),
    ("ComputeNode_EnableScheduling", "POST", _N + "/enablescheduling"),
    ("ComputeNode_GetRemoteLoginSettings", "GET", _N + "/remoteloginsettings"),
    ("ComputeNode_GetRemoteDesktop", "GET", _N + "/rdp"),
    ("ComputeNode_UploadBatchServiceLogs", "POST", _N + "/uploadbatchservicelogs"),
    ("ComputeNode_List", "GET", "/pools/{poolId}/nodes"),
    ("ComputeNodeExtension_Get", "GET", _N + "/extensions/{extensionName}"),
    ("ComputeNodeExtension_List", "GET", _N + "/extensions"),
    ("Task_Add", "POST", "/jobs/{jobId}/tasks"),
    ("Task_List", "GET", "/jobs/{jobId}/tasks"),
    ("Task_AddCollection", "POST", "/jobs/{jobId}/addtaskcollection"),
    ("Task_Delete", "DELETE", "/jobs/{jobId}/tasks/{taskId}"),
    ("Task_Get", "GET", "/jobs/{jobId}/tasks/{taskId}"),
    ("Task_Update", "PUT", "/jobs/{jobId}/tasks/{taskId}"),
    ("Task_ListSubtasks", "GET", "/jobs/{jobId}/tasks/{taskId}/subtasksinfo"),
    ("Task_Terminate", "POST", "/jobs/{jobId}/tasks/{taskId}/terminate"),
    ("Task_Reactivate", "POST", "/jobs/{jobId}/tasks/{taskId}/reactivate"),
]

HANDLERS: dict[str, Handler] = {}


def operation(operation_id: str) -> Callable[[Handler], Handler]:
    """Register the handler of one operation."""
    if operation_id not in {op for op, _, _ in OPERATIONS}:
        raise KeyError(f"unknown operation {operation_id}")

    def register(handler: Handler) -> Handler:
        HANDLERS[operation_id] = handler
        return handler

    return register


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    segments: tuple[re.Pattern[str], ...]
    greedy_tail: str | None  # name of a trailing parameter that takes the rest of the path

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if self.greedy_tail:
            if len(parts) < len(self.segments):
                return None
            parts = parts[: len(self.segments) - 1] + ["/".join(parts[len(self.segments) - 1 :])]
        elif len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(self.segments, parts):
            found = pattern.fullmatch(part)
            if found is None:
                return None
            params.update({k: unquote(v) for k, v in found.groupdict().items()})
        return params


def _compile(operation_id: str, method: str, path: str) -> Route:
    pieces = path.strip("/").split("/")
    patterns = []
    for piece in pieces:
        regex = "".join(
            f"(?P<{token[1:-1]}>.+)" if token.startswith("{") else re.escape(token)
            for token in re.split(r"(\{[^}]+\})", piece)
            if token
        )
        patterns.append(re.compile(regex, re.IGNORECASE | re.DOTALL))
    tail = pieces[-1][1:-1] if pieces[-1] == "{filePath}" else None
    return Route(operation_id, method, tuple(patterns), tail)


ROUTES = [_compile(*entry) for entry in OPERATIONS]


def resolve(method: str, raw_path: str) -> tuple[str, Handler | None, dict[str, str]]:
    """The operation for a request: (operationId, handler or None, path parameters).

    Raises 400 InvalidUri for a path no operation has and 405 for a known path with
    another method. Literal routes win over parameterised ones (``/nodes`` vs a node id).
    """
    parts = raw_path.strip("/").split("/")
    path_known = False
    best: tuple[int, Route, dict[str, str]] | None = None
    for route in ROUTES:
        params = route.match(parts)
        if params is None:
            continue
        path_known = True
        if route.method != method:
            continue
        rank = len(params)
        if best is None or rank < best[0]:
            best = (rank, route, params)
    if best is None:
        if path_known:
            raise BatchError("UnsupportedHttpVerb", f"The resource doesn't support the specified HTTP verb {method}.",
                             [("HttpVerb", method)])
        raise BatchError("InvalidUri", "The requested URI does not represent any resource on the server.",
                         [("RequestUri", raw_path)])
    route, params = best[1], best[2]
    if any("\x00" in value for value in params.values()):  # no id or file name holds NUL (PostgreSQL can't)
        raise BatchError("InvalidUri", "The requested URI does not represent any resource on the server.",
                         [("RequestUri", raw_path), ("Reason", "A path segment contains a NUL character.")])
    return route.operation_id, HANDLERS.get(route.operation_id), params


async def unimplemented(req: ApiRequest, operation_id: str) -> Response:
    raise not_implemented(operation_id)
