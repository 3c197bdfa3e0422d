"""The agent protocol's messages (docs/execution.md), typed: the server decodes what agents send with
these, so a malformed message is a 400 BatchError, never a 500. Imports nothing of openbatch: the
agent and the server both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec

PREFIX = "/_openbatch/agent/v1"
#: A long-poll answered because the server stops carries this header ("1"): the agent's next calls may
#: find it gone for a while, which is no fault to warn of.
SERVER_STOPPING = "openbatch-server-stopping"


class Message(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    pass


class RegisterRequest(Message, kw_only=True):
    account: str | None = None
    pool: str
    hostname: str = "unknown"
    #: The port an SSH server listens on on the agent's host (GetRemoteLoginSettings), if any.
    sshPort: int | None = None
    nodes: list[str] = []
    nodeCount: int = 0


class RegisteredNode(Message, kw_only=True):
    id: str
    slots: int
    rootDir: str | None = None
    #: The pool's containerImageNames, pulled before the node is ready (with its containerRegistries).
    containerImages: list[str] = []
    containerRegistries: list[dict[str, Any]] = []


class RegisterAnswer(Message, kw_only=True):
    agentId: str
    credential: str
    nodes: list[RegisteredNode]
    #: Seconds without a call after which the server finds the agent lost; an agent on another host
    #: stops its runs well before that when it cannot reach the server (so they never run twice).
    nodeLostAfter: float | None = None


class WorkRequest(Message, kw_only=True):
    #: The runs the agent has: running, or ended with their exit not yet acknowledged.
    runs: list[str] = []
    #: The agent lost the server for a while and stopped its runs: the server reconciles it.
    reconcile: bool = False
    #: What its host is using (agent/usage.py): cpuPercent, memoryBytes, diskBytes and running totals
    #: of disk and network traffic; the pool's autoscale samples average them over its agents.
    usage: dict[str, float] | None = None


class Event(Message, kw_only=True):
    """``exited`` (a run ended: id, exitCode or failure, the node's start and end time), ``coordinated``
    (an instance of a multi-instance task ran its coordination command successfully: id, its times),
    ``nodeReady`` (nodeId), ``started`` (a reserved run started: id, startTime) or ``unreserved`` (a
    reserved run the server cancelled is gone without a result: dropped from the queue, or killed)."""

    type: str
    id: str | None = None
    nodeId: str | None = None
    exitCode: int | None = None
    failure: dict[str, Any] | None = None
    preProcessingError: bool | None = None
    startTime: str | None = None
    endTime: str | None = None
    #: A container run's TaskContainerExecutionInformation (containerId, state, error).
    containerInfo: dict[str, Any] | None = None
    #: An exit of a reserved run whose ``started`` the server may not have taken yet.
    reserved: bool | None = None


class EventsRequest(Message, kw_only=True):
    events: list[Event] = []
    takeCommands: bool = False
    #: The agent's clock when it sent the report (the server corrects the events' times by the offset).
    sentAt: str | None = None


class FileAnswer(Message, kw_only=True):
    ok: Any = None
    error: dict[str, Any] | None = None


# -- commands (server -> agent) ---------------------------------------------------------------


class Command(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    pass


class RunUser(Message, kw_only=True):
    """Who a run is (domain/identities.py): an auto user (``scope``, ``admin``) or a pool's named account
    (``name`` and its settings; ``known`` False when the pool has no such account). A run with no
    ``user`` runs as the pool's non-admin auto user."""

    name: str | None = None
    scope: str = "pool"   # pool or task (auto users)
    admin: bool = False
    known: bool = True
    password: str | None = None
    uid: int | None = None
    gid: int | None = None
    sshPrivateKey: str | None = None

    @property
    def label(self) -> str:
        """``AZ_BATCH_TASK_USER_IDENTITY``: PoolAdmin, TaskNonAdmin, TaskAdmin or the account's name."""
        if self.name is not None:
            return self.name
        return ("Task" if self.scope == "task" else "Pool") + ("Admin" if self.admin else "NonAdmin")


class RunContainer(Message, kw_only=True):
    """A run inside a container (domain/containers.py): the task's ``containerSettings`` on a container pool.
    ``error``: why the run cannot go (a task without settings on a container pool, or the reverse)."""

    imageName: str = ""
    runOptions: str | None = None
    workingDirectory: str | None = None
    bindMounts: list[dict[str, Any]] | None = None
    #: The credentials to pull the image with (a ContainerRegistry: registryServer, username, password).
    registry: dict[str, Any] | None = None
    error: str | None = None


class RunMultiInstance(Message, kw_only=True):
    """An instance of a multi-instance task (domain/multi_instance.py): ``instance`` 0 is the primary."""

    instance: int = 0
    coordinationCommandLine: str | None = None
    commonResourceFiles: list[dict[str, Any]] = []
    #: The task's directory relative to the node root (AZ_BATCH_TASK_SHARED_DIR; the common resource files).
    sharedDir: str


class RunCommand(Command, kw_only=True, tag="run"):
    """Run a process on a node: a task (or an instance of a multi-instance task: kind ``subtask`` for
    the instances other than the primary), a job preparation or release task, or a start task."""

    id: str
    kind: str   # task, preparation, release, start
    nodeId: str
    commandLine: str
    environment: dict[str, str] = {}
    resourceFiles: list[dict[str, Any]] = []
    outputFiles: list[dict[str, Any]] = []
    taskDir: str
    maxWallClockSeconds: float | None = None
    jobPrepDir: str | None = None
    user: RunUser | None = None
    container: RunContainer | None = None
    multiInstance: RunMultiInstance | None = None
    #: The node's slots the run takes (a task's requiredSlots; 0: a preparation, release or start task).
    slots: int = 0
    #: A reserved task (prefetch, domain/reservations.py): queued, it starts when the node has ``slots``
    #: free (reported ``started``); a kill before then drops it (reported ``unreserved``).
    reserved: bool = False


class ProceedCommand(Command, kw_only=True, tag="proceed"):
    """Every instance of the multi-instance task whose primary run is ``id`` coordinated: run its command."""

    id: str


class KillCommand(Command, kw_only=True, tag="kill"):
    """Stop the run ``id`` (its whole process group)."""

    id: str


class RemoveNodeCommand(Command, kw_only=True, tag="removeNode"):
    """The node left its pool: stop its runs, remove its disk."""

    nodeId: str


class RebootNodeCommand(Command, kw_only=True, tag="rebootNode"):
    """Restart the node: its runs die (a reimage also wipes its disk), then it is ready again."""

    nodeId: str
    reimage: bool = False


class RemoveTaskDirCommand(Command, kw_only=True, tag="removeTaskDir"):
    """A task's retention passed (or it was deleted): remove its directory from the node."""

    nodeId: str
    taskDir: str


class FileCommand(Command, kw_only=True, tag="file"):
    """A Files API operation on a node of this agent; answered by POST to ``/files/<requestId>``."""

    requestId: str
    op: str   # list, stat, read, delete, uploadLogs
    nodeId: str
    root: str = ""
    path: str | None = None
    recursive: bool | None = None
    start: int | None = None
    end: int | None = None
    # uploadLogs: the agent's log files of a time range into a Blob container (UploadBatchServiceLogs)
    containerUrl: str | None = None
    startTime: str | None = None
    endTime: str | None = None


class UserCommand(Command, kw_only=True, tag="user"):
    """AddUser/UpdateUser/DeleteUser on a node of this agent (``op`` add, update, delete; ``settings`` as
    domain/node_users.py makes them); answered like a file request, by POST to ``/files/<requestId>``."""

    requestId: str
    op: str
    nodeId: str
    settings: dict[str, Any]


AnyCommand = (RunCommand | KillCommand | RemoveNodeCommand | RebootNodeCommand | RemoveTaskDirCommand | FileCommand
              | UserCommand | ProceedCommand)


class CommandsAnswer(msgspec.Struct, kw_only=True):
    commands: list[AnyCommand] = []


# -- files of a node (the Files API of a node on another host goes through its agent) ------------


@dataclass(frozen=True, slots=True)
class FileLocation:
    """Where a file tree lives: a node, and the directory on it (relative to the node root)."""

    pool_id: str
    node_id: str
    root: str


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file or directory, its path relative to the task directory or node root."""

    name: str
    is_directory: bool
    last_modified: datetime
    content_length: int
    creation_time: datetime | None = None
    content_type: str = "application/octet-stream"
    file_mode: str | None = None


class FileInfoMessage(Message, kw_only=True):
    name: str
    isDirectory: bool
    lastModified: datetime
    contentLength: int
    contentType: str = "application/octet-stream"
    fileMode: str | None = None
    creationTime: datetime | None = None


def info_to_wire(info: FileInfo) -> dict[str, Any]:
    return msgspec.to_builtins(FileInfoMessage(
        name=info.name, isDirectory=info.is_directory, lastModified=info.last_modified,
        contentLength=info.content_length, contentType=info.content_type, fileMode=info.file_mode,
        creationTime=info.creation_time))


def info_from_wire(data: Any) -> FileInfo:
    message = msgspec.convert(data, FileInfoMessage)
    return FileInfo(name=message.name, is_directory=message.isDirectory, last_modified=_aware(message.lastModified),
                    content_length=message.contentLength, creation_time=_aware(message.creationTime),
                    content_type=message.contentType, file_mode=message.fileMode)


def _aware(value: datetime | None) -> Any:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)
