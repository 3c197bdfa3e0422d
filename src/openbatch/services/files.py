"""Task and node files.

Files live on the node that ran the task and are read through a
:class:`NodeFileSource` (the execution layer's connection to the node agent).
Until a task has run on a node there are no files: 409 ``TaskFilesUnavailable``.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Protocol

from ..domain.errors import BatchError, not_found
from ..protocol import FileInfo, FileLocation
from ..store.records import Record

__all__ = ["FileInfo", "FileLocation", "FileService", "NodeFileSource"]

Json = dict[str, Any]
from .context import ServiceContext, require_job, require_task
from .nodes import NodeService


class NodeFileSource(Protocol):
    def list(self, where: FileLocation, recursive: bool) -> list[FileInfo]: ...
    def stat(self, where: FileLocation, path: str) -> FileInfo: ...
    def read(self, where: FileLocation, path: str, start: int, end: int | None) -> bytes: ...
    def delete(self, where: FileLocation, path: str, recursive: bool) -> None: ...


class FileService:
    def __init__(self, ctx: ServiceContext, nodes: NodeService) -> None:
        self.ctx = ctx
        self.nodes = nodes
        #: Where a location's files are read (this host's disk, or the node's agent); None: no nodes exist.
        self.source_for: Callable[[FileLocation], NodeFileSource] | None = None
        #: (node, container URL, virtual directory, start, end) -> files its agent uploaded of its own logs.
        self.upload_agent_logs: Callable[[FileLocation, str, str, str, str | None], int] | None = None

    def upload_service_logs(self, account: str, pool_id: str, node_id: str, container_url: str, start: str,
                            end: str | None) -> Json:
        """ComputeNode_UploadBatchServiceLogs: the node's agent logs of [start, end] go to the container,
        under ``<pool>/<node>/<unique id>``; answered once they are there (the count is what was sent)."""
        where = self.node_location(account, pool_id, node_id)
        if self.upload_agent_logs is None:
            raise not_found("NodeNotFound", "node", node_id)
        directory = f"{pool_id}/{where.node_id}/{uuid.uuid4()}"
        count = self.upload_agent_logs(where, container_url, directory, start, end)
        return {"virtualDirectoryName": directory, "numberOfFilesUploaded": count}

    def task_location(self, account: str, job_id: str, task_id: str) -> FileLocation:
        with self.ctx.store.read() as conn:
            job = require_job(conn, account, job_id)
            task = require_task(conn, job, task_id)
        node_info = task.body.get("nodeInfo")
        if task.row.get("files_removed"):
            raise BatchError("TaskFilesCleanedup", "The files of the specified task were removed from its node "
                             "(its retentionTime passed, or it was deleted).", [("TaskId", task.body["id"])])
        if not node_info:
            raise BatchError(
                "TaskFilesUnavailable",
                "The files of the specified task are not available: the task has not run on a compute node.",
                [("TaskId", task.body["id"]), ("TaskState", task.body["state"])],
            )
        return FileLocation(node_info["poolId"], node_info["nodeId"], node_info.get("taskRootDirectory", ""))

    def node_location(self, account: str, pool_id: str, node_id: str) -> FileLocation:
        node: Record = self.nodes.get(account, pool_id, node_id)
        return FileLocation(pool_id, node.body["id"], "")

    def _source(self, where: FileLocation) -> NodeFileSource:
        if self.source_for is None:
            raise not_found("NodeNotFound", "node", where.node_id)
        return self.source_for(where)

    def list(self, where: FileLocation, recursive: bool) -> list[FileInfo]:
        return self._source(where).list(where, recursive)

    def stat(self, where: FileLocation, path: str) -> FileInfo:
        return self._source(where).stat(where, path)

    def read(self, where: FileLocation, path: str, start: int, end: int | None) -> bytes:
        return self._source(where).read(where, path, start, end)

    def delete(self, where: FileLocation, path: str, recursive: bool) -> None:
        self._source(where).delete(where, path, recursive)
