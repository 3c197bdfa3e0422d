"""Files of nodes hosted by agents on other hosts, read through the agent's own connection (and node
users, which every node's agent makes).

The server cannot connect to such an agent (connections are outbound from the agent),
so a file operation becomes a ``file`` command on the agent's long-poll; the agent
answers with a POST that resolves the waiting request. Called from worker threads.
"""

from __future__ import annotations

import base64
import secrets
import threading
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, Callable

from ..domain.errors import BatchError
from ..protocol import Command, FileCommand, FileInfo, FileLocation, UserCommand, info_from_wire

Json = dict[str, Any]

#: How long a file request may wait for the agent's answer.
ANSWER_SECONDS = 30.0
#: How long the agent may take to upload its log files (UploadBatchServiceLogs answers once they are up).
UPLOAD_SECONDS = 120.0


class AgentFileRequests:
    """Pending file requests, resolved by the agents' answers."""

    def __init__(self, push: Callable[[str, list[Json]], None], agent_of: Callable[[FileLocation], str | None]) -> None:
        self.push = push
        self.agent_of = agent_of
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()

    def answer(self, request_id: str, answer: Json) -> bool:
        """Resolve the request with the agent's answer; False if it is not waited for here."""
        with self._lock:
            future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(answer)
            return True
        return False

    def waiting(self) -> list[str]:
        """The requests waited for here."""
        with self._lock:
            return list(self._pending)

    def _ask(self, where: FileLocation, op: str, wait: float = ANSWER_SECONDS, **params: Any) -> Any:
        return self._request(where, lambda request_id: FileCommand(
            requestId=request_id, op=op, nodeId=where.node_id, root=where.root, **params), wait)

    def _request(self, where: FileLocation, command: Callable[[str], Command], wait: float) -> Any:
        """Send the agent of ``where`` the command made for a new request id; its answer ("ok"), or its error."""
        agent_id = self.agent_of(where)
        if agent_id is None:
            raise BatchError("NodeNotFound", "The node's agent is not connected.", [("NodeId", where.node_id)])
        request_id = secrets.token_hex(12)
        future: Future = Future()
        with self._lock:
            self._pending[request_id] = future
        self.push(agent_id, [command(request_id)])
        try:
            answer = future.result(wait)
        except FutureTimeout:
            with self._lock:
                self._pending.pop(request_id, None)
            raise BatchError("OperationTimedOut", "The node did not answer the request in time.",
                             [("NodeId", where.node_id)]) from None
        if "error" in answer:
            error = answer["error"]
            raise BatchError(error["code"], error["message"], [tuple(v) for v in error.get("values", [])])
        return answer.get("ok")

    def node_user(self, node_id: str, op: str, settings: Json) -> None:
        """A node user's account made, changed or removed by the node's agent (services/node_users.py)."""
        self._request(FileLocation("", node_id, ""), lambda request_id: UserCommand(
            requestId=request_id, op=op, nodeId=node_id, settings=settings), ANSWER_SECONDS)

    # NodeFileSource
    def list(self, where: FileLocation, recursive: bool) -> list[FileInfo]:
        return [info_from_wire(item) for item in self._ask(where, "list", recursive=recursive)]

    def stat(self, where: FileLocation, path: str) -> FileInfo:
        return info_from_wire(self._ask(where, "stat", path=path))

    def read(self, where: FileLocation, path: str, start: int, end: int | None) -> bytes:
        return base64.b64decode(self._ask(where, "read", path=path, start=start, end=end))

    def delete(self, where: FileLocation, path: str, recursive: bool) -> None:
        self._ask(where, "delete", path=path, recursive=recursive)

    def upload_logs(self, where: FileLocation, container_url: str, directory: str, start: str,
                    end: str | None) -> int:
        """The node's agent uploads its log files of the range; how many it uploaded."""
        return int(self._ask(where, "uploadLogs", wait=UPLOAD_SECONDS, path=directory, containerUrl=container_url,
                             startTime=start, endTime=end))
