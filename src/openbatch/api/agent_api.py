"""The agent protocol endpoints (docs/execution.md): register, long-poll for work, report events.

Not part of the Batch API: agents call these, users never do. Authentication:
register with the account's Shared Key (an agent on another host) or the server's
join token (local agents it starts itself); afterwards the credential it was given.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Mapping

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..auth import SignedRequest, verify
from ..domain import clock
from ..domain.errors import BatchError, invalid_body
from ..scheduler.hub import AgentHub
from ..services import Services
from ..services.agents import AgentIdentity
from .request import run, run_write

log = logging.getLogger("openbatch.agents")

PREFIX = "/_openbatch/agent/v1"
MAX_WAIT = 30.0


class RegisterRequest(msgspec.Struct, kw_only=True):
    account: str | None = None
    pool: str
    hostname: str = "unknown"
    nodes: list[str] = []
    nodeCount: int = 0


class AgentApi:
    def __init__(self, services: Services, hub: AgentHub, accounts: Mapping[str, bytes], join_token: str,
                 node_root: Any) -> None:
        self.services = services
        self.hub = hub
        self.accounts = accounts
        self.join_token = join_token
        self.node_root = node_root  # (account, pool_id, node_id) -> local root dir
        self._identities: dict[str, tuple[str, AgentIdentity]] = {}
        #: Resolves a tunnelled file request with the agent's answer (set by the runtime).
        self.file_answer: Any = None

    async def handle(self, request: Request, path: str) -> Response:
        try:
            if path == "/register" and request.method == "POST":
                return await self._register(request)
            agent = await self._authenticate(request)
            if path == "/work" and request.method in ("GET", "POST"):
                wait = min(float(request.query_params.get("wait", "0") or 0), MAX_WAIT)
                if self.hub.first_contact(agent.agent_id):
                    body = msgspec.json.decode(await request.body() or b"{}")
                    await run(self.services.agents.reconcile, agent, set(body.get("runs", [])))
                return _json({"commands": await self._take_unless_gone(request, agent.agent_id, wait)})
            if path.startswith("/files/") and request.method == "POST" and self.file_answer is not None:
                self.hub.touch(agent.agent_id)
                self.file_answer(path.removeprefix("/files/"), msgspec.json.decode(await request.body()))
                return _json({})
            if path == "/events" and request.method == "POST":
                self.hub.touch(agent.agent_id)
                body = msgspec.json.decode(await request.body())
                await self._events(agent, body.get("events", []))
                # An agent that asks takes its pending commands here: those its own report just
                # queued (the next runs on the slots it freed) need no long-poll round trip.
                commands = await self.hub.take(agent.agent_id, 0) if body.get("takeCommands") else []
                return _json({"commands": commands})
            raise BatchError("InvalidUri", "Unknown agent endpoint.")
        except BatchError as error:
            return _json(error.to_wire(), error.status)
        except (msgspec.DecodeError, ValueError, TypeError) as error:
            return _json(invalid_body(str(error)).to_wire(), 400)

    async def _take_unless_gone(self, request: Request, agent_id: str, wait: float) -> list:
        """Long-poll for commands, but stop waiting if the agent hangs up (a dead agent is not 'calling')."""
        take = asyncio.ensure_future(self.hub.take(agent_id, wait))
        gone = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({take, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not take.done():
            take.cancel()
            return []
        return take.result()

    async def _register(self, request: Request) -> Response:
        body = await request.body()
        params = msgspec.json.decode(body, type=RegisterRequest)
        auth = request.headers.get("authorization", "")
        if auth.startswith("OpenBatchJoin "):
            if not hmac.compare_digest(auth.removeprefix("OpenBatchJoin ").encode(), self.join_token.encode()):
                raise BatchError("AuthenticationFailed", "The join token is not valid.")
            account = params.account or ""
        else:
            scope = request.scope
            signed = SignedRequest(method="POST", raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                                   raw_query=scope.get("query_string", b"").decode("latin-1"),
                                   headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                                   body_length=len(body))
            account = verify(signed, self.accounts, clock.utcnow())
        agent_id, credential, nodes = await run(
            lambda: self.services.agents.register(account, params.pool, params.hostname,
                                                  node_ids=params.nodes, new_nodes=params.nodeCount))
        local = bool(params.nodes)
        self.hub.touch(agent_id)
        self.hub.first_contact(agent_id)  # a new agent has nothing to reconcile
        return _json({
            "agentId": agent_id,
            "credential": credential,
            "nodes": [{"id": n.body["id"], "slots": n.row["slots"],
                       "rootDir": str(self.node_root(account, params.pool, n.body["id"])) if local else None}
                      for n in nodes],
        })

    async def _authenticate(self, request: Request) -> AgentIdentity:
        auth = request.headers.get("authorization", "")
        agent_id, _, credential = auth.removeprefix("OpenBatchAgent ").partition(":")
        cached = self._identities.get(agent_id)
        if cached and hmac.compare_digest(cached[0], credential):
            return cached[1]
        identity = await run(self.services.agents.authenticate, agent_id, credential)
        self._identities[agent_id] = (credential, identity)
        return identity

    async def _events(self, agent: AgentIdentity, events: list[dict]) -> None:
        exits = [e for e in events if e.get("type") == "exited"]
        for event in events:
            if event.get("type") == "nodeReady":
                await run_write(self.services.ctx.store, self.services.agents.node_ready, agent,
                                str(event.get("nodeId", "")))
        if exits:
            await run_write(self.services.ctx.store, self.services.runs.report, agent.agent_id, exits)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _json(body: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")
