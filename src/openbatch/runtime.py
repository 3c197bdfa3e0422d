"""The execution runtime inside the server: agent hub, scheduler, node providers.

It is the services' :class:`~openbatch.services.context.Notifier`: commands decided in a
transaction reach agents after the commit, and every change that may free or need a
slot wakes the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Mapping

from .api.agent_api import AgentApi
from .nodes.agent_files import AgentFileRequests
from .agent.files import NodeFiles
from .nodes.local import LocalNodes
from .nodes.slurm import SlurmNodes, SlurmSettings
from .protocol import Command
from .nodes.provider import JoinedAgents, NodeProvider
from .scheduler.hub import AgentHub
from .scheduler.loop import Scheduler
from .services import Services
from .services.agents import node_agent
from .services.context import Notifier

log = logging.getLogger("openbatch.runtime")


class Runtime(Notifier):
    def __init__(self, services: Services, accounts: Mapping[str, bytes], data_dir: Path, server_url: str, *,
                 nodes_per_agent: int = 8, node_lost_after: float = 10.0, provider: str = "local",
                 slurm: SlurmSettings | None = None) -> None:
        self.services = services
        self.server_url = server_url
        self.hub = AgentHub()
        self.node_lost_after = node_lost_after
        self.scheduler = Scheduler(services, self.hub, node_lost_after, self.agent_silent)
        join_token = secrets.token_urlsafe(32)
        hosts: LocalNodes | SlurmNodes
        if provider == "slurm":
            hosts = SlurmNodes(services, data_dir, lambda: self.server_url, join_token, slurm)
            services.ctx.restart_means_new_host = True
        else:
            hosts = LocalNodes(services, data_dir, lambda: self.server_url, join_token, nodes_per_agent)
        hosts.on_agents_gone = lambda agent_ids: [self.agent_gone(agent_id) for agent_id in agent_ids]
        #: The agents the server starts itself (``local``: processes on this host; ``slurm``: Slurm
        #: allocations), and those that join from other hosts by themselves.
        self.provider: NodeProvider = hosts
        self.joined: NodeProvider = JoinedAgents()
        self.agent_api = AgentApi(services, self.hub, accounts, join_token,
                                  node_root=lambda account, pool, node: self.provider.node_root(node),
                                  node_lost_after=node_lost_after)
        services.ctx.notifier = self
        services.ctx.account_url = lambda account: self.server_url
        self.file_requests = AgentFileRequests(self.hub.push, lambda where: node_agent(services.ctx, where.node_id)[0])
        local_files = NodeFiles(lambda pool, node: self.provider.node_root(node))
        services.files.source_for = lambda where: (
            local_files if node_agent(services.ctx, where.node_id)[1] and self.provider.node_root(where.node_id)
            else self.file_requests)
        self.agent_api.file_answer = self.file_requests.answer
        services.files.upload_agent_logs = self.file_requests.upload_logs

    def push(self, agent_id: str, commands: list[Command]) -> None:
        self.hub.push(agent_id, commands)

    def wake(self) -> None:
        self.scheduler.wake()

    def nodes_changed(self) -> None:
        self.provider.nodes_changed()

    def agent_gone(self, agent_id: str) -> None:
        """Thread-safe: the agent's credential ended; it is forgotten (queued commands, cached identity)."""
        self.hub.forget(agent_id)
        self.agent_api.forget(agent_id)

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

    async def start(self) -> None:
        self.hub.bind(asyncio.get_running_loop())
        remote = await asyncio.to_thread(self.services.agents.restart_recovery)
        self.hub.expect(remote)
        self.scheduler.start()
        self.provider.start()
        self.joined.start()

    async def stop(self) -> None:
        self.hub.close()
        await self.scheduler.stop()
        await self.provider.stop()
        await self.joined.stop()
