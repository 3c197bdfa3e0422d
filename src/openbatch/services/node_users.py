"""ComputeNode AddUser, UpdateUser and DeleteUser: accounts on a node, made by the node's agent.

The node's host holds the truth (its agent makes, changes and removes the account,
agent/node_users.py), so nothing is stored here: the service checks the request and the
node's state, then asks the node's agent and answers with what the agent answered (through
the same request/answer channel as the Files API, so any server of a deployment can ask).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..domain.errors import BatchError
from ..domain.node_users import check_name, user_settings
from ..domain.nodes import NodeState
from .context import ServiceContext
from .nodes import NodeService

Json = dict[str, Any]

#: Asks the agent of a node: (node id, operation, settings) -> None, or raises its BatchError.
AskAgent = Callable[[str, str, Json], None]


def _no_agents(node_id: str, op: str, settings: Json) -> None:
    raise BatchError("OperationNotValidOnNode", "This server runs no agents: its nodes have no accounts.",
                     [("NodeId", node_id)])


class NodeUserService:
    def __init__(self, ctx: ServiceContext, nodes: NodeService) -> None:
        self.ctx = ctx
        self.nodes = nodes
        #: Set by the runtime: how a node's agent is asked (nodes/agent_files.py).
        self.ask: AskAgent = _no_agents

    def add(self, account: str, pool_id: str, node_id: str, user: Any) -> datetime:
        """AddUser (``user``: a ComputeNodeUser struct); when it was made."""
        now = self.ctx.now()
        settings = user_settings(check_name(user.name), user.isAdmin, user.expiryTime, user.password,
                                 user.sshPublicKey, now)
        self._usable_node(account, pool_id, node_id)
        self.ask(node_id, "add", settings)
        return now

    def update(self, account: str, pool_id: str, node_id: str, name: str, update: Any) -> datetime:
        """UpdateUser: everything replaced (what the body leaves out is removed or defaulted)."""
        now = self.ctx.now()
        settings = user_settings(name, None, update.expiryTime, update.password, update.sshPublicKey, now)
        settings.pop("isAdmin")   # not part of an update: the account keeps its rights
        self._usable_node(account, pool_id, node_id)
        self.ask(node_id, "update", settings)
        return now

    def delete(self, account: str, pool_id: str, node_id: str, name: str) -> None:
        self._usable_node(account, pool_id, node_id)
        self.ask(node_id, "delete", {"name": name})

    def _usable_node(self, account: str, pool_id: str, node_id: str) -> None:
        """Accounts are managed on a node that is up (idle or running), as on Azure."""
        node = self.nodes.get(account, pool_id, node_id)
        if node.body["state"] not in (NodeState.IDLE.value, NodeState.RUNNING.value):
            raise BatchError("OperationNotValidOnNode", "User accounts can be managed only on a node that is "
                             "idle or running.", [("NodeState", node.body["state"])])
