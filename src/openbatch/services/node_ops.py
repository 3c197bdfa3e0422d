"""Operations on one compute node: disable/enable scheduling, reboot, reimage, deallocate, start.

A reboot or reimage ends what runs on the node by the chosen option (``requeue`` back to
active, ``terminate`` as failed) and restarts the node through ``rebooting``/``reimaging``
and ``starting`` (its start task runs again). Job preparation tasks rerun before that
job's next task there when rerunOnNodeRebootAfterSuccess is true (always after a reimage).

Deallocate stops a node as Azure stops its VM: what runs ends by the option (or, with
taskcompletion/retaineddata, the node takes no new task and stops when its tasks have ended), the
node is ``deallocated``, keeps its directories (its disk) and takes no task; Start brings it up
through ``starting`` as after a reboot.

An ``unusable`` node (its agent was lost) can be rebooted or reimaged too: a local node
whose agent is gone is brought up by a new agent (the node provider starts one for nodes
without an agent); a remote node restarts when its agent calls again.
"""

from __future__ import annotations

from datetime import datetime


from ..domain import commands, execution, nodes as node_rules, tasks as task_rules
from ..domain.errors import BatchError, not_found
from ..domain.nodes import NodeState
from ..protocol import RebootNodeCommand
from ..store import node_queries
from ..store.engine import Connection
from ..store.records import JOBS, NODES, PREP_RELEASE, Record
from ..store.task_queries import prep_rows_of_node
from . import reservations, transitions
from ..store.task_queries import tasks_on_node
from .allocation import Allocation
from .context import ServiceContext, require_pool

_BUSY = {
    NodeState.REBOOTING.value: "NodeBeingRebooted",
    NodeState.REIMAGING.value: "NodeBeingReimaged",
    NodeState.CREATING.value: "NodeBeingCreated",
    NodeState.STARTING.value: "NodeBeingStarted",
    NodeState.WAITING_FOR_START_TASK.value: "NodeBeingStarted",
}


class NodeOperations:
    def __init__(self, ctx: ServiceContext, allocation: Allocation) -> None:
        self.ctx = ctx
        self.allocation = allocation

    def node_vacated(self, conn: Connection, node: Record, now: datetime) -> None:
        """A node's last task left: what waited for it happens (taskcompletion/retaineddata): the
        node leaves its pool, stops (deallocate) or restarts (a reboot or reimage asked for meanwhile)."""
        if node.row["state"] == NodeState.LEAVING_POOL:
            self.allocation.remove(conn, node.row["account"], node, "requeue", now)
        elif node.row.get("pending_restart") == "deallocate":
            self._deallocated(conn, node, now)
        elif node.row.get("pending_restart"):
            self.restart_in(conn, node, node.row["pending_restart"] == "reimage", now)

    def deallocate(self, account: str, pool_id: str, node_id: str, option: str = "requeue") -> Record:
        """Stop the node now (requeue/terminate its tasks), or once its running tasks have ended."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            node = self._node(conn, account, pool_id, node_id)
            if node.body["state"] not in (NodeState.IDLE.value, NodeState.RUNNING.value):
                raise BatchError(_BUSY.get(node.body["state"], "OperationNotValidOnNode"),
                                 "A node can be deallocated only when it is idle or running.",
                                 [("NodeState", node.body["state"])])
            if option in ("taskcompletion", "retaineddata") and int(node.row["running_tasks"]) > 0:
                reservations.cancel_node(self.ctx, conn, node.pk)   # (now: take_down does it otherwise)
                body = node_rules.with_state(node.body, NodeState.DEALLOCATING, now)
                return NODES.update(conn, node, body, now, extra={"pending_restart": "deallocate"})
            node = self.take_down(conn, node, "terminate" if option == "terminate" else "requeue", now)
            return self._deallocated(conn, node, now)

    def take_down(self, conn: Connection, node: Record, option: str, now: datetime) -> Record:
        """(Node locked.) End what runs on a node that goes down (deallocated, preempted): its tasks by
        ``option``, its start task; a restart asked for meanwhile is dropped (it must not run now)."""
        NODES.set_columns(conn, node.pk, pending_restart=None)
        reservations.cancel_node(self.ctx, conn, node.pk)
        self.end_tasks(conn, node, option, now)
        node = NODES.get_by_pk(conn, node.pk, for_update=True) or node
        start_run = node.row.get("start_run_id")
        if start_run and node.row["agent_id"] is not None:
            self.ctx.send(conn, node.row["agent_id"], [commands.kill_command(start_run)])
        return node

    def _deallocated(self, conn: Connection, node: Record, now: datetime) -> Record:
        return NODES.update(conn, node, node_rules.with_state(node.body, NodeState.DEALLOCATED, now), now,
                            extra={"used_slots": 0, "running_tasks": 0, "pending_restart": None,
                                   "start_run_id": None})

    def start(self, account: str, pool_id: str, node_id: str) -> Record:
        """Start a deallocated node: it boots (its start task runs again) and takes tasks again."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            node = self._node(conn, account, pool_id, node_id)
            if node.body["state"] != NodeState.DEALLOCATED.value:
                raise BatchError("OperationNotValidOnNode", "Only a deallocated node can be started.",
                                 [("NodeState", node.body["state"])])
            return self.restart_in(conn, node, False, now, state=NodeState.STARTING)

    def _node(self, conn: Connection, account: str, pool_id: str, node_id: str) -> Record:
        pool = require_pool(conn, account, pool_id)
        node = NODES.get(conn, (account, pool.row["id_key"]), (node_id,), for_update=True)
        if node is None:
            raise not_found("NodeNotFound", "node", node_id)
        return node

    def end_tasks(self, conn: Connection, node: Record, option: str, now: datetime) -> None:
        """End what runs on the node: ``terminate`` (completed as failed) or requeued."""
        for task in tasks_on_node(conn, node.pk):
            job = JOBS.get_by_pk(conn, task.row["job_pk"], for_update=True)
            body = task_rules.terminated(task.body, now) if option == "terminate" else execution.requeued(task.body, now)
            transitions.stop_on_node(self.ctx, conn, job, task, body, now)
        self.ctx.wake_after(conn)

    def set_scheduling(self, account: str, pool_id: str, node_id: str, enable: bool, option: str = "requeue") -> Record:
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            node = self._node(conn, account, pool_id, node_id)
            node_rules.check_scheduling_change(node.body, enable)
            if not enable:
                reservations.cancel_node(self.ctx, conn, node.pk)
            if not enable and option in ("requeue", "terminate"):
                self.end_tasks(conn, node, option, now)
                node = NODES.get_by_pk(conn, node.pk, for_update=True) or node
            body = {**node.body, "schedulingState": "enabled" if enable else "disabled"}
            state = node_rules.busy_state(body, int(node.row["running_tasks"]))
            if state is not None:
                body = node_rules.with_state(body, state, now)
            self.ctx.wake_after(conn)
            return NODES.update(conn, node, body, now)

    def reboot(self, account: str, pool_id: str, node_id: str, option: str = "requeue", *, reimage: bool = False) -> Record:
        """Restart the node now (requeue/terminate its tasks) or, with taskcompletion/retaineddata,
        once its running tasks have ended (it takes no new ones meanwhile)."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            node = self._node(conn, account, pool_id, node_id)
            code = _BUSY.get(node.body["state"])
            if code or node.body["state"] not in (NodeState.IDLE.value, NodeState.RUNNING.value, NodeState.OFFLINE.value,
                                                  NodeState.START_TASK_FAILED.value, NodeState.UNUSABLE.value,
                                                  NodeState.PREEMPTED.value):
                raise BatchError(code or "OperationNotValidOnNode", "The node cannot be rebooted in its current state.",
                                 [("NodeState", node.body["state"])])
            if option in ("taskcompletion", "retaineddata") and int(node.row["running_tasks"]) > 0:
                reservations.cancel_node(self.ctx, conn, node.pk)   # (now: restart_in does it otherwise)
                NODES.set_columns(conn, node.pk, pending_restart="reimage" if reimage else "reboot")
                return node
            if option in ("requeue", "terminate"):
                self.end_tasks(conn, node, option, now)
                node = NODES.get_by_pk(conn, node.pk, for_update=True) or node
            return self.restart_in(conn, node, reimage, now)

    def restart_in(self, conn: Connection, node: Record, reimage: bool, now: datetime,
                   state: NodeState | None = None) -> Record:
        """The node restarts (in the caller's transaction): its agent kills what runs there and
        brings it up again; preparation tasks rerun as rerunOnNodeRebootAfterSuccess says.
        A node without an agent (a local node whose agent was lost) gets a new one. ``state``: what
        it shows meanwhile (default rebooting or reimaging)."""
        stale_preparations(conn, node, reimage)
        reservations.cancel_node(self.ctx, conn, node.pk)   # (before the agent hears of the restart)
        state = state or (NodeState.REIMAGING if reimage else NodeState.REBOOTING)
        record = NODES.update(conn, node, node_rules.with_state(node.body, state, now), now,
                              extra={"start_run_id": None, "used_slots": 0, "running_tasks": 0,
                                     "pending_restart": None})
        agent_id = node.row["agent_id"]
        if agent_id is not None and self.ctx.restart_means_new_host and _is_local(conn, agent_id):
            # the provider's hosts are allocations: the node restarts in a new one (its agent's
            # credential ends, so the agent stops and its allocation ends)
            node_queries.delete_agent(conn, agent_id)
            reservations.forget_agent(conn, agent_id)
            self.ctx.agent_gone_after(conn, agent_id)
            self.ctx.nodes_changed_after(conn)
        elif agent_id is None:
            self.ctx.nodes_changed_after(conn)
        else:
            self.ctx.send(conn, node.row["agent_id"],
                          [RebootNodeCommand(nodeId=node.body["id"], reimage=reimage)])
        return record


def stale_preparations(conn: Connection, node: Record, reimage: bool) -> None:
    """The node restarts: its job preparation tasks run again before their job's next task there
    (after a reimage always; after a reboot if they failed or rerunOnNodeRebootAfterSuccess)."""
    for record in prep_rows_of_node(conn, node.pk):
        job = JOBS.get_by_pk(conn, record.row["job_pk"])
        prep = (job.body.get("jobPreparationTask") if job else None) or {}
        completed_ok = record.row["prep_result"] == "success"
        if reimage or not completed_ok or prep.get("rerunOnNodeRebootAfterSuccess", True):
            PREP_RELEASE.set_columns(conn, record.pk, prep_stale=True)


def _is_local(conn: Connection, agent_id: str) -> bool:
    row = node_queries.agent(conn, agent_id)
    return row is not None and bool(row.local)
