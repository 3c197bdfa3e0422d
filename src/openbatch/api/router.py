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

#: openbatch's own operations, beside Azure's: under ``/openbatch/``, signed and versioned like the rest.
EXTENSIONS: list[tuple[str, str, str]] = [
    ("Openbatch_PreemptNodes", "POST", "/openbatch/pools/{poolId}/preemptnodes"),
    ("Openbatch_Overview", "GET", "/openbatch/overview"),
    ("Openbatch_JobProgress", "GET", "/openbatch/jobprogress"),
]

HANDLERS: dict[str, Handler] = {}


def operation(operation_id: str) -> Callable[[Handler], Handler]:
    """Register the handler of one operation."""
    if operation_id not in {op for op, _, _ in OPERATIONS + EXTENSIONS}:
        raise KeyError(f"unknown operation {operation_id}")

    def register(handler: Handler) -> Handler:
        HANDLERS[operation_id] = handler
        return handler

    return register


@dataclass(frozen=True, slots=True)
class Route:
    """One operation's path, split into what each segment must be."""

    operation_id: str
    method: str
    order: int  # position in OPERATIONS: breaks ties between equally specific routes
    size: int  # number of segments (for a greedy route, the least)
    literals: tuple[tuple[int, str], ...]  # (position, lower-cased text)
    names: tuple[tuple[int, str], ...]  # (position, parameter) for whole-segment parameters
    patterns: tuple[tuple[int, re.Pattern[str]], ...]  # mixed segments: certificates(thumbprint=...)
    greedy: bool  # a trailing {filePath} takes the rest of the path

    @property
    def rank(self) -> int:
        """How many parameters the route has: fewer is more specific."""
        return len(self.names) + sum(p.groups for _, p in self.patterns)

    @property
    def first(self) -> str | None:
        return self.literals[0][1] if self.literals and self.literals[0][0] == 0 else None

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The path parameters (percent-decoded) if ``parts`` is this route's path, else None.

        Literals compare by ``str.lower``, which is what the case-insensitive match of the
        spec's ASCII literals amounts to for raw paths (latin-1 text).
        """
        if self.greedy:
            if len(parts) < self.size:
                return None
            if len(parts) > self.size:
                parts = parts[: self.size - 1] + ["/".join(parts[self.size - 1 :])]
        elif len(parts) != self.size:
            return None
        for i, literal in self.literals:
            if parts[i].lower() != literal:
                return None
        params: dict[str, str] = {}
        for i, pattern in self.patterns:
            found = pattern.fullmatch(parts[i])
            if found is None:
                return None
            params.update({k: unquote(v) for k, v in found.groupdict().items()})
        for i, name in self.names:
            if not parts[i]:
                return None
            params[name] = unquote(parts[i])
        return params


def _compile(order: int, operation_id: str, method: str, path: str) -> Route:
    pieces = path.strip("/").split("/")
    literals, names, patterns = [], [], []
    for i, piece in enumerate(pieces):
        tokens = [token for token in re.split(r"(\{[^}]+\})", piece) if token]
        if len(tokens) == 1 and not tokens[0].startswith("{"):
            literals.append((i, piece.lower()))
        elif len(tokens) == 1:
            names.append((i, piece[1:-1]))
        else:
            regex = "".join(f"(?P<{t[1:-1]}>.+)" if t.startswith("{") else re.escape(t) for t in tokens)
            patterns.append((i, re.compile(regex, re.IGNORECASE | re.DOTALL)))
    greedy = pieces[-1] == "{filePath}"
    return Route(operation_id, method, order, len(pieces), tuple(literals), tuple(names), tuple(patterns), greedy)


ROUTES = [_compile(order, *entry) for order, entry in enumerate(OPERATIONS)]
_EXTENSION_ROUTES = tuple(_compile(order, *entry) for order, entry in enumerate(EXTENSIONS))
_LONGEST = max(route.size for route in ROUTES)
_FIRSTS = frozenset(route.first for route in ROUTES if route.first is not None)


def _could_match(route: Route, size: int, first: str | None) -> bool:
    if size < route.size or (size > route.size and not route.greedy):
        return False
    return route.first is None or route.first == first


#: (segment count, first segment) -> the routes that could match, most specific first. Counts
#: past the longest route share one entry (only greedy routes reach them); a first segment no
#: route starts with is None.
_CANDIDATES: dict[tuple[int, str | None], tuple[Route, ...]] = {
    (size, first): tuple(sorted((r for r in ROUTES if _could_match(r, size, first)), key=lambda r: (r.rank, r.order)))
    for size in range(1, _LONGEST + 2)
    for first in (*_FIRSTS, None)
}


def resolve(method: str, raw_path: str) -> tuple[str, Handler | None, dict[str, str]]:
    """The operation for a request: (operationId, handler or None, path parameters).

    Raises 400 InvalidUri for a path no operation has and 405 for a known path with
    another method. Literal routes win over parameterised ones (``/nodes`` vs a node id).
    Only the routes indexed under the path's segment count and first segment are tried.
    """
    parts = raw_path.strip("/").split("/")
    first = parts[0].lower()
    key = (min(len(parts), _LONGEST + 1), first if first in _FIRSTS else None)
    path_known = False
    for route in _EXTENSION_ROUTES if first == "openbatch" else _CANDIDATES[key]:
        params = route.match(parts)
        if params is None:
            continue
        if route.method != method:
            path_known = True
            continue
        if any("\x00" in value for value in params.values()):  # no id or file name holds NUL (PostgreSQL can't)
            raise BatchError("InvalidUri", "The requested URI does not represent any resource on the server.",
                             [("RequestUri", raw_path), ("Reason", "A path segment contains a NUL character.")])
        return route.operation_id, HANDLERS.get(route.operation_id), params
    if path_known:
        raise BatchError("UnsupportedHttpVerb", f"The resource doesn't support the specified HTTP verb {method}.",
                         [("HttpVerb", method)])
    raise BatchError("InvalidUri", "The requested URI does not represent any resource on the server.",
                     [("RequestUri", raw_path)])


async def unimplemented(req: ApiRequest, operation_id: str) -> Response:
    raise not_implemented(operation_id)
