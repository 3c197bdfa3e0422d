"""The execution runtime inside the server: agent hub, scheduler, node providers, and its place
among the servers sharing a database.

It is the services' :class:`~openbatch.services.context.Notifier`: commands decided in a
transaction reach agents after the commit, and every change that may free or need a
slot wakes the scheduler. On SQLite the server is alone and leads. On PostgreSQL any number
of servers share the database: commands and wake-ups go through it (cluster/channel.py, heard
by cluster/listener.py), and the one holding the leader lock (cluster/leader.py) runs the
scheduler loop and the node providers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any, Mapping

from .agent.files import NodeFiles
from .api.agent_api import AgentApi
from .cluster.channel import DatabaseOutbox
from .cluster.leader import Leadership
from .cluster.listener import Listener
from .cluster.presence import Presence
from .nodes.agent_files import AgentFileRequests
from .nodes.local import LocalNodes
from .nodes.provider import JoinedAgents, NodeProvider
from .nodes.slurm import SlurmNodes, SlurmSettings
from .protocol import Command
from .scheduler.hub import AgentHub
from .scheduler.loop import Scheduler
from .services import Services
from .services.agents import node_agent
from .services.context import Notifier
from .store import cluster_queries as channels
from .store.lease import Holder

log = logging.getLogger("openbatch.runtime")


def join_token(accounts: Mapping[str, bytes]) -> str:
    """The token the server's own agents register with: the same on every server of the accounts."""
    secret = b"".join(name.encode() + b"\0" + key for name, key in sorted(accounts.items()))
    return hmac.new(secret, b"openbatch agent join token", hashlib.sha256).hexdigest()


class Runtime(Notifier):
    def __init__(self, services: Services, accounts: Mapping[str, bytes], data_dir: Path, server_url: str, *,
                 nodes_per_agent: int = 8, node_lost_after: float = 10.0, provider: str = "local",
                 slurm: SlurmSettings | None = None) -> None:
        self.services = services
        self.server_url = server_url
        self.shared = not services.ctx.store.is_sqlite   # PostgreSQL: other servers may share it
        self.outbox: DatabaseOutbox | None = None
        self.hub = AgentHub(fetch=self._fetch if self.shared else None)
        self.node_lost_after = node_lost_after
        self.presence = Presence(services, self.hub, node_lost_after)
        self.scheduler = Scheduler(services, self.presence.silent, self.agent_silent)
        token = join_token(accounts)
        hosts: LocalNodes | SlurmNodes
        if provider == "slurm":
            hosts = SlurmNodes(services, data_dir, lambda: self.server_url, token, slurm)
            services.ctx.restart_means_new_host = True
        else:
            hosts = LocalNodes(services, data_dir, lambda: self.server_url, token, nodes_per_agent)
        hosts.on_agents_gone = lambda agent_ids: [self.agent_gone(agent_id) for agent_id in agent_ids]
        #: The agents the server starts itself (``local``: processes on this host; ``slurm``: Slurm
        #: allocations), and those that join from other hosts by themselves.
        self.provider: NodeProvider = hosts
        self.joined: NodeProvider = JoinedAgents()
        self.agent_api = AgentApi(services, self.hub, accounts, token,
                                  node_root=lambda account, pool, node: self.provider.node_root(node),
                                  node_lost_after=node_lost_after)
        services.ctx.notifier = self
        services.ctx.account_url = lambda account: self.server_url
        self.leading = False
        self.leadership: Leadership | None = None
        self.listener: Listener | None = None
        if self.shared:
            self.outbox = DatabaseOutbox(services.ctx.store, lambda: self.leading, self.scheduler.wake,
                                         self.provider.nodes_changed, self._forget)
            services.ctx.outbox = self.outbox
            self.leadership = Leadership(services.ctx.store.url, Holder(url=server_url), self._lead,
                                         self._stop_leading)
            self.listener = Listener(services.ctx.store.url, {
                channels.AGENT_COMMANDS: self._agent_commands,
                channels.AGENT_GONE: self._agent_gone_elsewhere,
                channels.FILE_ANSWER: self._file_answer_elsewhere,
                channels.WAKE: lambda _: self.leading and self.scheduler.wake(),
                channels.NODES_CHANGED: lambda _: self.leading and self.provider.nodes_changed(),
            })
        self.file_requests = AgentFileRequests(self.outbox.send_now if self.outbox else self.hub.push,
                                               lambda where: node_agent(services.ctx, where.node_id)[0])
        local_files = NodeFiles(lambda pool, node: self.provider.node_root(node))
        services.files.source_for = lambda where: (
            local_files if self.leading and node_agent(services.ctx, where.node_id)[1]
            and self.provider.node_root(where.node_id) else self.file_requests)
        self.agent_api.file_answer = self.file_answer
        services.files.upload_agent_logs = self.file_requests.upload_logs
        services.node_users.ask = self.file_requests.node_user

    # -- Notifier (one server; with several, the outbox sends through the database) --------------

    def push(self, agent_id: str, commands: list[Command]) -> None:
        self.hub.push(agent_id, commands)

    def wake(self) -> None:
        self.scheduler.wake()

    def take(self, agent_id: str) -> list[Command]:
        return self.hub.take_now(agent_id)

    def nodes_changed(self) -> None:
        self.provider.nodes_changed()

    def agent_gone(self, agent_id: str, retired: bool = False) -> None:
        """Thread-safe: the agent's credential ended; it is forgotten (queued commands, cached identity)."""
        self._forget(agent_id, retired)

    def _forget(self, agent_id: str, retired: bool = False) -> None:
        self.hub.forget(agent_id)
        self.agent_api.forget(agent_id, retired)

    def _agent_gone_elsewhere(self, payload: str | None) -> None:
        """(The listener's thread.) Another server ended an agent's credential: ``<agent id>[ retired]``."""
        if payload:
            agent_id, _, how = payload.partition(" ")
            self._forget(agent_id, how == channels.RETIRED)

    # -- through the database -------------------------------------------------------------------

    async def _fetch(self, agent_id: str) -> list[Command]:
        assert self.outbox is not None
        return await self.outbox.take_on_loop(agent_id)

    def _agent_commands(self, agent_id: str | None) -> None:
        if agent_id is None:
            self.hub.signal_all()
        else:
            self.hub.signal(agent_id)

    def file_answer(self, request_id: str, answer: Any) -> None:
        """An agent answered a file request: the asker is this server, or another one (told through
        the database)."""
        if not self.file_requests.answer(request_id, answer) and self.outbox is not None:
            outbox = self.outbox
            asyncio.get_running_loop().run_in_executor(
                None, lambda: outbox.put_answer(request_id, answer, self.services.ctx.now()))

    def _file_answer_elsewhere(self, request_id: str | None) -> None:
        """(The listener's thread.) An answer another server took in: taken by the one that asked."""
        assert self.outbox is not None
        waiting = self.file_requests.waiting()
        for wanted in ([request_id] if request_id else waiting):
            if wanted in waiting:
                answer = self.outbox.take_answer(wanted)
                if answer is not None:
                    self.file_requests.answer(wanted, answer)

    # -- leading --------------------------------------------------------------------------------

    async def agent_silent(self, agent_id: str) -> None:
        """An agent stopped calling for ``node_lost_after`` seconds. One the provider started is
        killed (its processes too) and then recovered by it; one that joined by itself is lost now."""
        self.hub.forget(agent_id)
        local = await asyncio.to_thread(self.services.agents.is_local, agent_id)
        if local:
            node_ids = await asyncio.to_thread(self.services.agents.node_ids_of, agent_id)
            if self.provider.hung(node_ids):
                return
        log.warning("agent %s stopped calling for %.0f s: its nodes are unusable and their tasks go back to "
                    "the queue", agent_id, self.node_lost_after)
        await asyncio.to_thread(self.services.agents.agent_lost, agent_id)

    async def _lead(self) -> None:
        """This server leads: the local agents of the one before are gone with it (their nodes come
        back as after a reboot); the scheduler loop and the node providers run here."""
        self.leading = True
        self.presence.lead()
        await asyncio.to_thread(self.services.agents.restart_recovery)
        self.scheduler.start()
        self.provider.start()
        self.joined.start()

    async def _stop_leading(self) -> None:
        self.leading = False
        await self.scheduler.stop()
        await self.provider.stop()
        await self.joined.stop()

    async def start(self) -> None:
        self.hub.bind(asyncio.get_running_loop())
        self.presence.start()
        if self.listener is not None and self.leadership is not None:
            self.listener.start()
            await asyncio.to_thread(self.listener.wait_connected, 10.0)
            await self.leadership.start()
        else:
            await self._lead()

    async def stop(self) -> None:
        self.hub.close()
        if self.leadership is not None:
            await self.leadership.stop_asking()
        if self.leading:
            await self._stop_leading()
        if self.leadership is not None:
            await self.leadership.release()   # another server leads at once
        await self.presence.stop()
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
