"""The agent protocol endpoints (docs/execution.md): register, long-poll for work, report events.

Not part of the Batch API: agents call these, users never do. Authentication:
register with the account's Shared Key (an agent on another host) or the server's
join token (local agents it starts itself); afterwards the credential it was given.
Every request is authenticated from its headers before its body is read (with a size
limit), and decoded into the typed messages of :mod:`openbatch.protocol`: anything
malformed is a 400 BatchError.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from typing import Any, Mapping

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..auth import SignedRequest, verify
from ..domain import clock
from ..domain.errors import BatchError, invalid_body
from ..protocol import (
    SERVER_STOPPING,
    PREFIX,
    Command,
    CommandsAnswer,
    EventsRequest,
    FileAnswer,
    RegisterAnswer,
    RegisteredNode,
    RegisterRequest,
    WorkRequest,
)
from ..scheduler.hub import AgentHub
from ..services import Services
from ..services.agents import AgentIdentity
from .request import run

log = logging.getLogger("openbatch.agents")

__all__ = ["PREFIX", "AgentApi"]

MAX_WAIT = 30.0
#: How often a long-poll's list of the agent's runs is compared with the tasks sent to it (a task
#: whose command never arrived goes back to the queue: services/agents.py requeue_undelivered).
RECHECK_SECONDS = 30.0
#: The largest body an agent sends: an event report, a registration.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Retired agents remembered (to tell them so when they call again), the oldest forgotten first.
MAX_RETIRED_REMEMBERED = 10_000
#: A file answer carries up to 64 MiB of a file, base64-encoded.
MAX_FILE_ANSWER_BYTES = 90 * 1024 * 1024

_REGISTER = msgspec.json.Decoder(RegisterRequest)
_WORK = msgspec.json.Decoder(WorkRequest)
_EVENTS = msgspec.json.Decoder(EventsRequest)
_FILE_ANSWER = msgspec.json.Decoder(FileAnswer)
_encode = msgspec.json.Encoder().encode


class AgentApi:
    def __init__(self, services: Services, hub: AgentHub, accounts: Mapping[str, bytes], join_token: str,
                 node_root: Any, node_lost_after: float = 10.0) -> None:
        self.services = services
        self.hub = hub
        self.accounts = accounts
        self.join_token = join_token
        self.node_root = node_root  # (account, pool_id, node_id) -> local root dir
        self.node_lost_after = node_lost_after
        self._identities: dict[str, tuple[str, AgentIdentity]] = {}
        self._rechecked: dict[str, float] = {}
        self._retired: OrderedDict[str, None] = OrderedDict()
        #: Resolves a tunnelled file request with the agent's answer (set by the runtime).
        self.file_answer: Any = None

    def forget(self, agent_id: str, retired: bool = False) -> None:
        """The agent's credential ended: it is not accepted any more, even from the cache. A ``retired``
        one (its last nodes left their pool) is told so when it calls (410), not that it is unknown."""
        self._identities.pop(agent_id, None)
        self._rechecked.pop(agent_id, None)
        if retired:
            self._retired[agent_id] = None
            while len(self._retired) > MAX_RETIRED_REMEMBERED:
                self._retired.popitem(last=False)

    def _recheck_due(self, agent_id: str) -> bool:
        """Whether to compare the agent's runs with what it was sent (at most every RECHECK_SECONDS)."""
        now = time.monotonic()
        if now - self._rechecked.setdefault(agent_id, now) < RECHECK_SECONDS:
            return False
        self._rechecked[agent_id] = now
        return True

    async def handle(self, request: Request, path: str) -> Response:
        try:
            if path == "/register" and request.method == "POST":
                return await self._register(request)
            agent = await self._authenticate(request)
            if path == "/work" and request.method in ("GET", "POST"):
                return await self._work(request, agent)
            if path.startswith("/files/") and request.method == "POST" and self.file_answer is not None:
                self.hub.touch(agent.agent_id)
                answer = _FILE_ANSWER.decode(await _body(request, MAX_FILE_ANSWER_BYTES) or b"{}")
                self.file_answer(path.removeprefix("/files/"), msgspec.to_builtins(answer))
                return _json({})
            if path == "/events" and request.method == "POST":
                self.hub.touch(agent.agent_id)
                report = _EVENTS.decode(await _body(request, MAX_BODY_BYTES) or b"{}")
                answer = await self._events(agent, report)
                # An agent that asks takes its pending commands here, with those its own report
                # decided (the next runs on the slots it freed): no long-poll round trip.
                if not report.takeCommands:
                    commands = []
                elif answer is not None:   # (the report took the queue, in order, in its transaction)
                    commands = answer
                else:
                    commands = await self.hub.take(agent.agent_id, 0)
                return Response(_encode(CommandsAnswer(commands=commands)), media_type="application/json")
            raise BatchError("InvalidUri", "Unknown agent endpoint.")
        except BatchError as error:
            return _json(error.to_wire(), error.status)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            return _json(invalid_body(str(error)).to_wire(), 400)
        except ClientDisconnect:
            return Response(status_code=499)

    async def _work(self, request: Request, agent: AgentIdentity) -> Response:
        try:
            wait = min(float(request.query_params.get("wait", "0") or 0), MAX_WAIT)
        except ValueError:
            raise BatchError("InvalidQueryParameterValue", "wait must be a number of seconds.") from None
        body = await _body(request, MAX_BODY_BYTES)
        work = _WORK.decode(body) if body.strip() else WorkRequest()
        if work.usage:
            self.hub.note_usage(agent.agent_id, work.usage)
        if self.hub.first_contact(agent.agent_id) or work.reconcile:
            await run(self.services.agents.reconcile, agent, set(work.runs))
        elif self._recheck_due(agent.agent_id):
            await run(self.services.agents.requeue_undelivered, agent, set(work.runs))
        commands = await self._take_unless_gone(request, agent.agent_id, max(0.0, wait))
        response = _json({"commands": commands})
        if self.hub.closing:
            response.headers[SERVER_STOPPING] = "1"
        return response

    async def _take_unless_gone(self, request: Request, agent_id: str, wait: float) -> list:
        """Long-poll for commands, but stop waiting if the agent hangs up (a dead agent is not 'calling')."""
        take = asyncio.ensure_future(self.hub.take(agent_id, wait))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({take, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server stops: the agent calls again later
            take.cancel()
            gone.cancel()
            return []
        gone.cancel()
        if not take.done():
            take.cancel()
            return []
        return take.result()

    async def _register(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scope = request.scope
        if auth.startswith("OpenBatchJoin "):
            if not hmac.compare_digest(auth.removeprefix("OpenBatchJoin ").encode(), self.join_token.encode()):
                raise BatchError("AuthenticationFailed", "The join token is not valid.")
            account = None
        else:  # Shared Key over the headers (content-length stands for the body): checked before reading it
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            length = _content_length(request)
            signed = SignedRequest(method="POST", raw_path=(scope.get("raw_path") or scope["path"].encode())
                                   .decode("latin-1"), raw_query=scope.get("query_string", b"").decode("latin-1"),
                                   headers=headers, body_length=length)
            account = verify(signed, self.accounts, clock.utcnow())
            if length > MAX_BODY_BYTES:
                raise BatchError("RequestBodyTooLarge", "The request body is too large.",
                                 [("MaxLimit", str(MAX_BODY_BYTES))])
        params = _REGISTER.decode(await _body(request, MAX_BODY_BYTES))
        if account is None:
            account = params.account or ""
        address = request.client.host if request.client is not None else None
        agent_id, credential, nodes = await run(
            lambda: self.services.agents.register(account, params.pool, params.hostname,
                                                  node_ids=params.nodes, new_nodes=params.nodeCount,
                                                  address=address, ssh_port=params.sshPort))
        local = bool(params.nodes)
        images, registries = await run(self.services.agents.pool_containers, account, params.pool)
        self.hub.touch(agent_id)
        self.hub.first_contact(agent_id)  # a new agent has nothing to reconcile
        answer = RegisterAnswer(
            agentId=agent_id, credential=credential, nodeLostAfter=self.node_lost_after,
            nodes=[RegisteredNode(id=n.body["id"], slots=n.row["slots"],
                                  rootDir=self._root_dir(account, params.pool, n.body["id"]) if local else None,
                                  containerImages=images, containerRegistries=registries)
                   for n in nodes])
        return Response(_encode(answer), media_type="application/json")

    def _root_dir(self, account: str, pool_id: str, node_id: str) -> str | None:
        """Where a provider-hosted node's directory is; None: where its agent's --root says."""
        root = self.node_root(account, pool_id, node_id)
        return None if root is None else str(root)

    async def _authenticate(self, request: Request) -> AgentIdentity:
        auth = request.headers.get("authorization", "")
        agent_id, _, credential = auth.removeprefix("OpenBatchAgent ").partition(":")
        cached = self._identities.get(agent_id)
        if cached and hmac.compare_digest(cached[0], credential):
            return cached[1]
        try:
            identity = await run(self.services.agents.authenticate, agent_id, credential)
        except BatchError:
            if agent_id in self._retired:   # (its RemoveNode commands went with its credential)
                raise BatchError("AgentRetired", "Every node of this agent left its pool: it has nothing more "
                                 "to do.") from None
            raise
        self._identities[agent_id] = (credential, identity)
        return identity

    async def _events(self, agent: AgentIdentity, report: EventsRequest) -> list[Command] | None:
        """Apply the report; if it carried exits and the agent takes commands in the answer, its
        commands: those queued before and those the report decided (None: no exits)."""
        exits = []
        for event in report.events:
            if event.type == "nodeReady" and event.nodeId:
                await run(self.services.agents.node_ready, agent, event.nodeId, event.failure)
            elif event.type in ("exited", "coordinated", "started", "unreserved") and event.id:
                exits.append(msgspec.to_builtins(event))
        if not exits:
            return None
        return await run(self.services.runs.report, agent.agent_id, exits, report.sentAt, report.takeCommands)


def _content_length(request: Request) -> int:
    raw = request.headers.get("content-length", "0") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise BatchError("InvalidHeaderValue", "Content-Length is not a number.") from None
    return length


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read only up to ``limit`` bytes (413 past it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BatchError("RequestBodyTooLarge", "The request body is too large.", [("MaxLimit", str(limit))])
        chunks.append(chunk)
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _json(body: Any, status: int = 200) -> Response:
    return Response(_encode(body), status_code=status, media_type="application/json")
