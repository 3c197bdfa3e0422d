"""The execution runtime inside the server: agent hub, scheduler, local node supervisor.

It is the services' :class:`~openbatch.services.context.Notifier`: commands decided in a
transaction reach agents after the commit, and every change that may free or need a
slot wakes the scheduler.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any, Mapping

from .api.agent_api import AgentApi
from .nodes.agent_files import AgentFileRequests
from .nodes.local_files import LocalNodeFiles
from .nodes.supervisor import LocalSupervisor
from .scheduler.hub import AgentHub
from .scheduler.loop import Scheduler
from .services import Services
from .services.agents import node_agent, restart_recovery
from .services.context import Notifier


class Runtime(Notifier):
    def __init__(self, services: Services, accounts: Mapping[str, bytes], data_dir: Path, server_url: str, *,
                 nodes_per_agent: int = 8, node_lost_after: float = 10.0) -> None:
        self.services = services
        self.server_url = server_url
        self.hub = AgentHub()
        self.scheduler = Scheduler(services, self.hub, node_lost_after)
        join_token = secrets.token_urlsafe(32)
        self.supervisor = LocalSupervisor(services, data_dir, lambda: self.server_url, join_token, nodes_per_agent)
        self.agent_api = AgentApi(services, self.hub, accounts, join_token,
                                  node_root=lambda account, pool, node: self.supervisor.node_root(node))
        services.ctx.notifier = self
        services.ctx.account_url = lambda account: self.server_url
        self.file_requests = AgentFileRequests(self.hub.push, lambda where: node_agent(services.ctx, where.node_id)[0])
        local_files = LocalNodeFiles(lambda pool, node: self.supervisor.node_root(node))
        services.files.source_for = lambda where: (
            local_files if node_agent(services.ctx, where.node_id)[1] else self.file_requests)
        self.agent_api.file_answer = self.file_requests.answer

    def push(self, agent_id: str, commands: list[dict[str, Any]]) -> None:
        self.hub.push(agent_id, commands)

    def wake(self) -> None:
        self.scheduler.wake()

    def nodes_changed(self) -> None:
        self.supervisor.nodes_changed()

    async def start(self) -> None:
        self.hub.bind(asyncio.get_running_loop())
        remote = await asyncio.to_thread(restart_recovery, self.services.ctx)
        self.hub.expect(remote)
        self.scheduler.start()
        self.supervisor.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.supervisor.stop()
