"""``openbatch agent``: host compute nodes and run what the server sends them.

The whole life of an agent reads top to bottom in :meth:`Agent.serve`: register,
bring the nodes up, then two loops until the last node leaves: one long-polls for
commands, one sends finished runs back in batches. Every connection is opened by the
agent (outbound only); a lost connection is retried until the server answers again.

When the agent stops (its last node left, SIGTERM, or the server no longer knows it),
nothing it started keeps running. An agent on another host that cannot reach the server
for :data:`FENCE_SHARE` of the server's node-lost timeout kills its runs: by the time the
server gives them to other nodes they are gone, so no task ever runs twice at once; when
it reaches the server again it asks to be reconciled.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Any

import msgspec

from ..auth.shared_key import sign
from ..domain.errors import BatchError
from .. import gc_tuning, logs
from ..protocol import (
    PREFIX,
    SERVER_STOPPING,
    AnyCommand,
    Event,
    FileCommand,
    FileLocation,
    KillCommand,
    ProceedCommand,
    RebootNodeCommand,
    RegisterAnswer,
    RegisterRequest,
    RemoveNodeCommand,
    RemoveTaskDirCommand,
    RunCommand,
    UserCommand,
    info_to_wire,
)
from .accounts import Accounts
from .files import NodeFiles
from .http import Client, TransportError
from .reaper import REAPER
from .reports import ANSWER, RETRY_SECONDS, Reports, wire as _wire
from .runner import RUN_GROUPS, RunResult, RunSpec, run
from .usage import HostUsage, ssh_port

log = logging.getLogger("openbatch.agent")

POLL_SECONDS = 20.0
#: Of the server's node-lost timeout, how long an agent on another host goes without an answer
#: before it kills its runs (the rest is the margin for the kill and the network).
FENCE_SHARE = 0.6
#: How long after a server said it was stopping its absence is expected (logged at info, not warning).
STOPPING_GRACE = 30.0
#: How long the exit of a run killed by a signal from outside waits before it is reported: if the agent
#: itself is being ended meanwhile (its Slurm allocation cancelled), the exit is not reported at all.
OUTSIDE_KILL_GRACE = 1.0

Json = dict[str, Any]



@dataclass
class Node:
    id: str
    root: Path
    runs: dict[str, asyncio.Task] = field(default_factory=dict)
    #: Its pool's containerImageNames (pulled before it is ready) and containerRegistries.
    images: list[str] = field(default_factory=list)
    registries: list[dict[str, Any]] = field(default_factory=list)
    #: Its task slots, and how many its running tasks take.
    slots: int = 1
    used: int = 0
    #: Reserved runs (prefetch) waiting for free slots, in the order the server reserved them.
    queue: list[RunCommand] = field(default_factory=list)
    #: Runs being killed on the server's word (a second kill must not cut their process's reaping short).
    stopping: set[str] = field(default_factory=set)


class Agent(Reports):
    def __init__(self, server: str, pool: str, *, account: str | None = None, key: str | None = None,
                 join_token: str | None = None, node_ids: list[str] | None = None, node_count: int = 0,
                 root: Path | None = None, log_dir: Path | None = None) -> None:
        self.server = server.rstrip("/")
        #: Where this agent's own log files are (service_logs.py); None: only stderr.
        self.log_dir = log_dir
        self.pool = pool
        self.account = account
        self.key = key
        self.join_token = join_token
        self.node_ids = node_ids or []
        self.node_count = node_count
        self.root = root or Path.cwd() / "openbatch-nodes"
        #: The host's usage, reported with the long-polls (the pool's autoscale samples).
        self.usage = HostUsage(self.root)
        #: The Unix accounts its tasks run as (accounts.py).
        self.accounts = Accounts(owner=f"{account or ''}/{pool}")
        super().__init__()
        self.nodes: dict[str, Node] = {}
        self.done = asyncio.Event()
        self.http = Client(self.server, timeout=POLL_SECONDS + 15, connect_timeout=10)
        self.auth = ""
        #: A local agent (started by the server with a join token) lives only as long as its server process.
        self.parent = os.getppid() if join_token else None
        #: How long a long-poll waits (shorter than the server's node-lost timeout, so an idle agent calls often).
        self.poll_seconds = POLL_SECONDS
        #: Seconds without an answer after which an agent on another host kills its runs (None: never).
        self.fence_after: float | None = None
        self.last_answer = 0.0   # the event loop's time of the server's last answer
        self.fenced = False
        self.wipe_on_exit = False
        #: The server no longer knows this agent: its nodes are gone (their task accounts go too).
        self.forgotten = False
        #: Until when (event loop time) a failing call is expected: the server said it was stopping.
        self.server_stopping_until = 0.0
        #: The server that started this (local) agent died: nobody takes its last reports (the next
        #: server counts its runs as lost), so it ends without waiting to send them.
        self.orphaned = False
        #: Primary runs of multi-instance tasks waiting for (or given) the server's word to run their command.
        self.proceeds: dict[str, asyncio.Event] = {}

    # -- the life of an agent --------------------------------------------------------------

    async def serve(self) -> None:
        await self.register()
        for node in self.nodes.values():
            _make_node_dirs(node.root)
        gc_tuning.settle()   # what it built to get here lives as long as the agent
        self.last_answer = asyncio.get_running_loop().time()
        sender = asyncio.create_task(self.send_events())
        poller = asyncio.create_task(self.poll_commands())
        readying = [asyncio.create_task(self.node_ready(node)) for node in self.nodes.values()]
        watchdog = asyncio.create_task(self.fence()) if self.fence_after else None
        await self.done.wait()
        poller.cancel()
        for ready in readying:
            ready.cancel()
        if watchdog is not None:
            watchdog.cancel()
        for node in list(self.nodes.values()):   # nothing this agent started outlives it
            await _stop_runs(node)
        if self.wipe_on_exit:
            for node in self.nodes.values():
                await asyncio.to_thread(shutil.rmtree, node.root, True)
        if self.forgotten:   # its nodes left their pool (a local node's directory is the server's to remove)
            for node in self.nodes.values():
                await asyncio.to_thread(self.accounts.node_removed, str(node.root), True)
        elif not self.orphaned and not self.wipe_on_exit:
            await self.flush()
        sender.cancel()
        for sending in list(self.sending):
            sending.cancel()
        await self.http.aclose()
        if "openbatch.agent.output_files" in sys.modules:   # the storage client was used: close its sessions
            await sys.modules["openbatch.agent.output_files"].close_clients()

    def answered(self, status: int) -> bool:
        """The server answered: it is alive. False if it no longer knows this agent (which then stops,
        its nodes gone: their runs are killed and, on another host, their directories removed; a
        local node's directory belongs to the server, which may give the node a new agent)."""
        self.last_answer = asyncio.get_running_loop().time()
        if status in (401, 403, 410):
            if status == 410:   # the server retired it (its last nodes left their pool): as asked
                log.info("every node of this agent left its pool; stopping")
            elif not self.done.is_set():
                log.error("the server no longer knows this agent (%s); stopping", status)
            self.wipe_on_exit = not self.join_token
            self.forgotten = True
            self.done.set()
            return False
        return True

    async def fence(self) -> None:
        """Kill every run when the server has not answered for ``fence_after`` seconds (it will soon find
        this agent lost and run the tasks elsewhere); the next call then asks to be reconciled."""
        assert self.fence_after is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.fence_after / 4))
            silent = loop.time() - self.last_answer
            if silent > self.fence_after and self._runs_going():
                log.error("no answer from the server for %.1f s: stopping every run (the server will run "
                          "them elsewhere)", silent)
                self.fenced = True
                for node in self.nodes.values():
                    _kill_runs_now(node)

    async def register(self) -> None:
        body = msgspec.json.encode(RegisterRequest(account=self.account, pool=self.pool, hostname=socket.gethostname(),
                                                   nodes=self.node_ids, nodeCount=self.node_count,
                                                   sshPort=ssh_port()))
        path = f"{PREFIX}/register"
        if self.join_token:
            headers = {"authorization": f"OpenBatchJoin {self.join_token}"}
        else:
            headers = {"ocp-date": formatdate(usegmt=True), "content-type": "application/json",
                       "content-length": str(len(body))}
            headers["authorization"] = sign("POST", self.http.url(path), headers, self.account or "", self.key or "")
        response = await self.http.post(path, content=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"openbatch agent: registration refused: {response.status_code} {response.text}")
        answer = msgspec.json.decode(response.content, type=RegisterAnswer)
        self.auth = f"OpenBatchAgent {answer.agentId}:{answer.credential}"
        if answer.nodeLostAfter:
            self.poll_seconds = max(0.5, min(POLL_SECONDS, answer.nodeLostAfter / 3))
            if not self.join_token:   # a local agent dies with its server; one elsewhere must fence itself
                self.fence_after = answer.nodeLostAfter * FENCE_SHARE
        for item in answer.nodes:
            root = (Path(item.rootDir) if item.rootDir else self.root / item.id).absolute()
            self.nodes[item.id] = Node(item.id, root, images=item.containerImages,
                                       registries=item.containerRegistries, slots=item.slots)
        log.info("registered as %s with %d node(s)", answer.agentId, len(self.nodes))

    async def poll_commands(self) -> None:
        while True:
            if self.parent is not None and os.getppid() != self.parent:
                log.error("the server that started this agent is gone; stopping")
                self.orphaned = True
                self.done.set()
                return
            try:
                runs = [run_id for node in self.nodes.values() for run_id in node.runs]
                runs += [queued.id for node in self.nodes.values() for queued in node.queue]
                runs += sorted(self.unacknowledged)
                reconcile = self.fenced
                response = await self.http.post(f"{PREFIX}/work", params={"wait": self.poll_seconds},
                                                json={"runs": runs, "reconcile": reconcile,
                                                      "usage": self.usage.read()},
                                                headers={"authorization": self.auth})
                if not self.answered(response.status_code):
                    return
                if not 200 <= response.status_code < 300:
                    raise TransportError(f"the server answered {response.status_code}")
                if reconcile:
                    self.fenced = False
                if response.headers.get(SERVER_STOPPING) == "1":
                    self.server_stopping_until = asyncio.get_running_loop().time() + STOPPING_GRACE
                self.handle_all(ANSWER.decode(response.content).commands)
            except (TransportError, ValueError, msgspec.ValidationError) as error:
                stopping = asyncio.get_running_loop().time() < self.server_stopping_until
                log.log(logging.INFO if stopping else logging.WARNING, "polling the server failed (%s%s); retrying",
                        error, ": it said it was stopping" if stopping else "")
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:   # a fault of the agent's own: said, and the loop goes on (never a silent stop)
                log.exception("polling the server failed unexpectedly; retrying")
                await asyncio.sleep(RETRY_SECONDS)

    # -- commands --------------------------------------------------------------------------

    def handle_all(self, commands: list[AnyCommand]) -> None:
        """Each command of an answer, in order; one that fails (a fault of the agent's own) is logged and the
        others still run (the server has handed them over: they would not come again)."""
        for command in commands:
            try:
                self.handle(command)
            except Exception:
                log.exception("the server's %s command could not be handled", type(command).__name__)

    def handle(self, command: AnyCommand) -> None:
        if isinstance(command, RunCommand):
            node = self.nodes.get(command.nodeId)
            if node is None or command.id in node.runs or any(queued.id == command.id for queued in node.queue):
                return
            if command.reserved:
                node.queue.append(command)
                self.start_queued(node)
            else:
                self.start(node, command)
        elif isinstance(command, ProceedCommand):
            if any(command.id in node.runs for node in self.nodes.values()):
                self.proceeds.setdefault(command.id, asyncio.Event()).set()
        elif isinstance(command, KillCommand):
            for node in self.nodes.values():
                task = node.runs.get(command.id)
                if task is not None and command.id not in node.stopping:   # (it stays a run until it is gone)
                    node.stopping.add(command.id)
                    task.cancel()
                for queued in node.queue:
                    if queued.id == command.id:   # a reservation cancelled before it started
                        node.queue.remove(queued)
                        self.report(Event(type="unreserved", id=command.id))
                        self.start_queued(node)
                        break
        elif isinstance(command, RemoveNodeCommand):
            asyncio.create_task(self.remove_node(command.nodeId))
        elif isinstance(command, RemoveTaskDirCommand):
            node = self.nodes.get(command.nodeId)
            if node is not None and command.taskDir:
                target = (node.root / command.taskDir).resolve()
                if node.root.resolve() in target.parents:
                    asyncio.create_task(asyncio.to_thread(self._remove_task_dir, node, command.taskDir, target))
        elif isinstance(command, FileCommand):
            asyncio.create_task(self.serve_file(command))
        elif isinstance(command, RebootNodeCommand):
            asyncio.create_task(self.reboot_node(command.nodeId, command.reimage))
        elif isinstance(command, UserCommand):
            asyncio.create_task(self.serve_user(command))

    def start(self, node: Node, command: RunCommand) -> None:
        node.used += command.slots
        task = node.runs[command.id] = asyncio.create_task(self.execute(node, command))
        task.add_done_callback(lambda done: self._ended(node, command, done))

    def _ended(self, node: Node, command: RunCommand, task: asyncio.Task) -> None:
        """A run's task is over (however: a kill can cancel it before its first step, when nothing in
        :meth:`execute` runs): its slots are free, and a reserved run killed on the server's word is
        reported ``unreserved`` now that its process is gone."""
        if node.runs.get(command.id) is task:
            del node.runs[command.id]
        node.stopping.discard(command.id)
        self.proceeds.pop(command.id, None)
        node.used -= command.slots
        if self.done.is_set():
            return
        if task.cancelled() and command.reserved:
            self.report(Event(type="unreserved", id=command.id))
        self.start_queued(node)

    def start_queued(self, node: Node) -> None:
        """Start the node's reserved runs that its free slots now take, in order (each reported ``started``)."""
        while node.queue and node.used + node.queue[0].slots <= node.slots:
            command = node.queue.pop(0)
            self.report(Event(type="started", id=command.id, startTime=_wire(datetime.now(timezone.utc))))
            self.start(node, command)

    async def execute(self, node: Node, command: RunCommand) -> None:
        spec = RunSpec(
            id=command.id, kind=command.kind, node_root=node.root, task_dir=command.taskDir,  # type: ignore[arg-type]
            command_line=command.commandLine, environment=command.environment,
            resource_files=command.resourceFiles, output_files=command.outputFiles, max_wall_clock=command.maxWallClockSeconds,
            job_prep_dir=command.jobPrepDir, user=command.user, container=command.container,
            multi_instance=command.multiInstance,
        )
        link = _InstanceLink(self, command.id) if command.multiInstance is not None else None
        try:
            result = await run(spec, accounts=self.accounts, link=link)
            if _killed_from_outside(result) and not self.done.is_set():
                # A signal nobody here sent: when an allocation ends (scancel, its time limit, a host
                # going down) every process of it gets one at once, this agent too. Wait for that.
                await asyncio.sleep(OUTSIDE_KILL_GRACE)
            if self.done.is_set():
                return  # the agent is ending with its node: the server recovers what ran here (node lost)
        # (a kill, on the server's word or by the fence, cancels the task: _ended settles it)
        except Exception as error:  # noqa: BLE001 - a bug in one run must not take the agent down
            log.exception("run %s failed", spec.id)
            result = _internal_failure(error)
        self.unacknowledged.add(spec.id)
        exited = _exited(spec.id, result)
        exited.reserved = command.reserved or None
        self.report(exited)

    def _remove_task_dir(self, node: Node, task_dir: str, target: Path) -> None:
        shutil.rmtree(target, True)
        self.accounts.task_dir_removed(str(node.root), task_dir)

    async def remove_node(self, node_id: str) -> None:
        """The node leaves its pool: kill what runs there (waiting for the processes to die), drop its disk
        and the accounts made for it."""
        node = self.nodes.pop(node_id, None)
        if node is None:
            return
        node.queue.clear()
        await _stop_runs(node)
        await asyncio.to_thread(shutil.rmtree, node.root, True)
        await asyncio.to_thread(self.accounts.node_removed, str(node.root), not self.nodes)
        from .containers import remove_node_containers   # (a killed agent's container runs may be left)

        await asyncio.to_thread(remove_node_containers, str(node.root))
        if not self.nodes:
            self.done.set()

    async def reboot_node(self, node_id: str, reimage: bool) -> None:
        """Restart a node: its processes die; a reimage also wipes its disk. Then it is ready again."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        node.queue.clear()
        await _stop_runs(node)
        if reimage:
            await asyncio.to_thread(shutil.rmtree, node.root, True)
            await asyncio.to_thread(self.accounts.node_removed, str(node.root), False)
        _make_node_dirs(node.root)
        await self.node_ready(node)

    async def node_ready(self, node: Node) -> None:
        """The node is up: its pool's container images are pulled first (a failure makes it unusable)."""
        failure = None
        if node.images:
            from .containers import ContainerError, prefetch

            try:
                await asyncio.to_thread(prefetch, node.images, node.registries)
            except ContainerError as error:
                failure = {"code": error.code, "message": error.message,
                           "errorDetails": [{"name": n, "value": v} for n, v in error.details]}
        self.report(Event(type="nodeReady", nodeId=node.id, failure=failure))

    async def serve_file(self, command: FileCommand) -> None:
        """Answer the server's file request (Files API on a node of this agent)."""
        if command.op == "uploadLogs":
            answer = await self._upload_logs(command)
        else:
            answer = await asyncio.to_thread(self._file_operation, command)
        try:
            await self.http.post(f"{PREFIX}/files/{command.requestId}", json=answer,
                                 headers={"authorization": self.auth})
        except TransportError as error:
            log.warning("answering a file request failed (%s)", error)

    async def serve_user(self, command: UserCommand) -> None:
        """AddUser, UpdateUser or DeleteUser on a node of this agent (node_users.py); answered like a file request."""
        from .node_users import NodeUserError, add_user, delete_user, update_user

        node = self.nodes.get(command.nodeId)
        operations = {"add": add_user, "update": update_user,
                      "delete": lambda root, settings: delete_user(root, settings["name"])}
        try:
            if node is None:
                raise NodeUserError("NodeNotFound", "The node is not hosted by this agent.")
            if command.op not in operations:
                raise NodeUserError("InvalidInput", f"Unknown user operation {command.op}.")
            await asyncio.to_thread(operations[command.op], str(node.root), command.settings)
            answer: Json = {"ok": None}
        except NodeUserError as error:
            answer = {"error": {"code": error.code, "message": error.message, "values": []}}
        except Exception as error:  # noqa: BLE001 - the server waits for an answer: never leave it without one
            log.exception("user operation %s on %s failed", command.op, command.nodeId)
            answer = {"error": {"code": "OperationNotValidOnNode", "message": f"The user operation failed on the "
                                f"node: {type(error).__name__}", "values": []}}
        try:
            await self.http.post(f"{PREFIX}/files/{command.requestId}", json=answer,
                                 headers={"authorization": self.auth})
        except TransportError as error:
            log.warning("answering a user request failed (%s)", error)

    async def _upload_logs(self, command: FileCommand) -> Json:
        """UploadBatchServiceLogs: this agent's log files of the range into the container."""
        from .service_logs import LogUploadError, upload_logs

        if command.nodeId not in self.nodes:
            return {"error": {"code": "NodeNotFound", "message": "The node is not hosted by this agent.",
                              "values": []}}
        if self.log_dir is None or not command.containerUrl or not command.startTime:
            return {"ok": 0}
        try:
            start = datetime.fromisoformat(command.startTime)
            end = datetime.fromisoformat(command.endTime) if command.endTime else None
            count = await upload_logs(self.log_dir, command.containerUrl, command.path or "", start, end)
        except LogUploadError as error:
            return {"error": {"code": "InvalidPropertyValue", "message": "The value provided for one of the "
                              "properties in the request body is invalid.",
                              "values": [("PropertyName", "containerUrl"), ("Reason", str(error))]}}
        except ValueError as error:
            return {"error": {"code": "InvalidPropertyValue", "message": str(error), "values": []}}
        return {"ok": count}

    def _file_operation(self, command: FileCommand) -> Json:
        node = self.nodes.get(command.nodeId)
        files = NodeFiles(lambda pool, node_id: self.nodes[node_id].root)
        where = FileLocation("", command.nodeId, command.root)
        try:
            if node is None:
                raise BatchError("NodeNotFound", "The node is not hosted by this agent.")
            if command.op == "list":
                return {"ok": [info_to_wire(i) for i in files.list(where, bool(command.recursive))]}
            if command.path is None:
                raise BatchError("InvalidInput", "The file operation names no path.")
            if command.op == "stat":
                return {"ok": info_to_wire(files.stat(where, command.path))}
            if command.op == "read":
                data = files.read(where, command.path, command.start or 0, command.end)
                return {"ok": base64.b64encode(data).decode()}
            if command.op == "delete":
                files.delete(where, command.path, bool(command.recursive))
                return {"ok": None}
            raise BatchError("InvalidInput", f"Unknown file operation {command.op}.")
        except BatchError as error:
            return {"error": {"code": error.code, "message": error.message, "values": error.values}}
        except (OSError, ValueError) as error:   # never leave the server waiting
            return {"error": {"code": "OperationInvalidForCurrentState", "message": f"The file operation failed: "
                              f"{error}", "values": []}}

class _InstanceLink:
    """An instance of a multi-instance task reports its coordination and waits for the server's word."""

    def __init__(self, agent: Agent, run_id: str) -> None:
        self.agent = agent
        self.run_id = run_id

    def coordinated(self, result: RunResult) -> None:
        self.agent.report(Event(type="coordinated", id=self.run_id, exitCode=0, startTime=_wire(result.start_time),
                                endTime=_wire(result.end_time)))

    async def proceed(self) -> None:
        await self.agent.proceeds.setdefault(self.run_id, asyncio.Event()).wait()


def _make_node_dirs(root: Path) -> None:
    """A node's own directories; ``shared`` is every task's to write, sticky as /tmp (tasks of several
    accounts use it)."""
    for sub in ("shared", "startup", "workitems"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "shared", 0o1777)


async def _stop_runs(node: Node) -> None:
    """Kill everything running on a node and wait until its processes are gone."""
    runs = list(node.runs.values())
    for task in runs:
        task.cancel()
    await asyncio.gather(*runs, return_exceptions=True)


def _kill_runs_now(node: Node) -> None:
    """SIGKILL every run of the node at once (no grace period: the server is about to run them elsewhere),
    and drop its reserved runs (the server forgets them with the agent)."""
    node.queue.clear()
    for run_id, task in list(node.runs.items()):
        pgid = RUN_GROUPS.get(run_id)
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        task.cancel()


#: Exit codes of a process ended by SIGHUP, SIGINT, SIGKILL or SIGTERM (128 + N, as a shell says).
_OUTSIDE_SIGNALS = frozenset(128 + sig for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGKILL, signal.SIGTERM))


def _killed_from_outside(result: RunResult) -> bool:
    """The process died of a signal, and not because its wall clock ran out (the runner kills those)."""
    return (result.exit_code in _OUTSIDE_SIGNALS and result.failure is not None
            and result.failure.get("code") == "FailureExitCode")


def _exited(run_id: str, result: RunResult) -> Event:
    return Event(type="exited", id=run_id, exitCode=result.exit_code, failure=result.failure,
                 preProcessingError=result.pre_processing_error or None, startTime=_wire(result.start_time),
                 endTime=_wire(result.end_time), containerInfo=result.container_info)


def _internal_failure(error: Exception) -> RunResult:
    now = datetime.now(timezone.utc)
    return RunResult(start_time=now, end_time=now, exit_code=None, result="failure", pre_processing_error=True,
                     failure={"category": "servererror", "code": "Unknown", "message": str(error)[:500]})


def main(args: Any) -> None:
    from .service_logs import log_handler

    logs.configure(*logs.from_environment())   # as the server that started it logs, or info and text
    root = args.root or Path.cwd() / "openbatch-nodes"
    log_dir = args.log_dir or root / "agent-logs"
    try:
        logging.getLogger().addHandler(log_handler(log_dir))
    except OSError as error:
        log.warning("no log file in %s (%s): UploadBatchServiceLogs will find none", log_dir, error)
        log_dir = None
    agent = Agent(args.server, args.pool, account=args.account, key=args.key,
                  join_token=os.environ.get("OPENBATCH_JOIN_TOKEN"), node_ids=args.node, node_count=args.nodes,
                  root=root, log_dir=log_dir)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.done.set)
        await agent.serve()

    REAPER.start()   # nothing this agent starts outlives it, even a kill -9 of the agent (reaper.py)
    try:
        _event_loop_runner()(serve())
    finally:
        REAPER.stop()


def _event_loop_runner() -> Any:
    """uvloop where it is installed (it comes with the server's uvicorn[standard]): it halves the
    event loop's own cost per task; the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
