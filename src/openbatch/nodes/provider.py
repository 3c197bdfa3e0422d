"""Where compute nodes come from: the node provider seam.

The services decide which nodes a pool should have. They write node rows: new ones in
``creating``; after a loss, a reboot or a reimage of a node whose agent is gone, rows in
``unusable``/``rebooting``/``reimaging`` with no agent. They remove rows when a pool
shrinks. A *provider* makes those nodes real and keeps them so:

- it hosts every node that waits for an agent (``services.agents.unhosted_local_nodes``)
  by starting an ``openbatch agent`` for it somewhere (a process on this host, a Slurm
  allocation, a pod), which registers with the server's join token;
- it notices when such an agent dies and reports it (``services.agents.agent_lost``), after
  making sure nothing it ran goes on, and kills an agent that hangs when asked to
  (:meth:`NodeProvider.hung`);
- it stops its agents when the server stops.

A provider changes no node row itself except through the services, so a new one (Slurm,
Kubernetes) plugs in without touching them. Agents that join from other hosts by
themselves (``openbatch agent --nodes N``, with the account's key) need no provider: they
bring their own nodes, and a silent one is simply lost (:class:`JoinedAgents`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class NodeProvider(Protocol):
    """The agents the server starts itself, for the nodes that wait for one."""

    def start(self) -> None:
        """Begin hosting (on the server's event loop)."""

    async def stop(self) -> None:
        """The server stops: so do this provider's agents, and nothing they ran goes on."""

    def nodes_changed(self) -> None:
        """Thread-safe: nodes were created or removed, or wait for an agent."""

    def hung(self, node_ids: list[str]) -> bool:
        """The agent hosting ``node_ids`` stopped calling: kill it (its nodes are then recovered as
        after its death). False if this provider runs no such agent."""

    def node_root(self, node_id: str) -> Path | None:
        """Where this server can read the node's files directly (None: only through its agent)."""


class JoinedAgents:
    """Agents started on other hosts by hand: nothing to start or stop; a silent one is lost."""

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def nodes_changed(self) -> None:
        pass

    def hung(self, node_ids: list[str]) -> bool:
        return False

    def node_root(self, node_id: str) -> Path | None:
        return None
