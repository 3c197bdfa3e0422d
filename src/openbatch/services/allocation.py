"""Nodes for pools: created on add/resize, removed on resize down, RemoveNodes and delete.

Runs inside the caller's transaction. A node leaving the pool deals with its running
tasks by the deallocation option: ``requeue`` (back to active, requeueCount + 1),
``terminate`` (completed as failed), ``taskcompletion`` / ``retaineddata`` (the node
stays ``leavingpool`` until they finish, and the pool stays ``resizing`` until the last
such node has left).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain import commands, execution, nodes as node_rules, pools as pool_rules
from ..domain.nodes import NodeState
from ..domain.states import AllocationState
from ..protocol import RemoveNodeCommand
from ..store import node_queries
from ..store.engine import Connection
from ..store.records import JOBS, NODES, POOLS, TASKS, Record
from ..store.task_queries import tasks_on_node
from . import reservations, transitions
from .context import ServiceContext
from .jobs import JobService

Json = dict[str, Any]

#: Nodes taken away first when a pool shrinks (then idle ones, then the least busy).
_FIRST_TO_REMOVE = ("creating", "starting", "unusable", "preempted", "starttaskfailed", "offline")


class Allocation:
    def __init__(self, ctx: ServiceContext, jobs: JobService) -> None:
        self.ctx = ctx
        self.jobs = jobs

    def pool_nodes(self, conn: Connection, account: str, pool_key: str) -> list[Record]:
        return node_queries.pool_nodes(conn, account, pool_key)

    def grow(self, conn: Connection, account: str, pool: Record, count: int, now: datetime,
             dedicated: bool = True) -> None:
        slots = int(pool.body.get("taskSlotsPerNode", 1))
        bodies = [node_rules.new_node_body(pool.body, node_rules.new_node_id(dedicated), now, dedicated)
                  for _ in range(count)]
        for body in bodies:
            NODES.insert(conn, (account, pool.row["id_key"]), body, now, extra={"slots": slots})
        if bodies:
            self.ctx.nodes_changed_after(conn)

    def shrink(self, conn: Connection, account: str, pool: Record, count: int, option: str, now: datetime,
               dedicated: bool = True) -> None:
        """Remove ``count`` nodes of one kind, least busy first."""
        for node_id in node_queries.nodes_to_remove(conn, account, pool.row["id_key"], count, _FIRST_TO_REMOVE,
                                                    NodeState.LEAVING_POOL.value, dedicated):
            node = NODES.get(conn, (account, pool.row["id_key"]), (node_id,), for_update=True)
            if node is not None:
                self.remove(conn, account, node, option, now)

    def remove(self, conn: Connection, account: str, node: Record, option: str, now: datetime) -> bool:
        """Take a node out of its pool; True if it is gone now, False if it leaves after its tasks."""
        reservations.cancel_node(self.ctx, conn, node.pk)   # (before the agent hears it leaves)
        running = tasks_on_node(conn, node.pk)
        if option in ("taskcompletion", "retaineddata") and running:
            body = node_rules.with_state(node.body, NodeState.LEAVING_POOL, now)
            body["schedulingState"] = "disabled"
            NODES.update(conn, node, body, now)
            return False
        kills = []
        jobs: set[int] = set()
        for task in running:
            job = JOBS.get_by_pk(conn, task.row["job_pk"])
            jobs.add(job.pk)
            if option == "terminate":
                new = execution.ended_by_node_removal(task.body, now)
            else:
                new = execution.requeued(task.body, now)
            if "multiInstanceSettings" in task.body:   # all its instances stop, wherever they run
                transitions.stop_on_node(self.ctx, conn, job, task, new, now)
                continue
            transitions.apply(conn, job, task, new, now)
            TASKS.set_columns(conn, task.pk, node_pk=None, run_id=None)
            transitions.vacate_node(conn, node.pk, task.body["requiredSlots"], now, ran=False, succeeded=False)
            if task.row["run_id"]:   # (a task waiting for its preparation has no run yet)
                kills.append(commands.kill_command(task.row["run_id"]))
            self.ctx.wake_after(conn)
        for job_pk in jobs:  # a job disabling (wait) for these tasks, or one whose last task ended
            job = JOBS.get_by_pk(conn, job_pk, for_update=True)
            if job is not None:
                self.jobs.after_tasks_changed(conn, job)
        self.ctx.send(conn, node.row["agent_id"], kills + [RemoveNodeCommand(nodeId=node.body["id"])])
        NODES.delete(conn, node.pk)
        if node.row["agent_id"] is not None:
            retire_agent_without_nodes(self.ctx, conn, node.row["agent_id"])
        self.ctx.nodes_changed_after(conn)
        if node.body["state"] == NodeState.LEAVING_POOL.value:
            self._left(conn, account, node.row["pool_id_key"], now)
        return True

    def leaving(self, conn: Connection, account: str, pool_key: str) -> bool:
        """Whether nodes of the pool are still waiting for their tasks before they leave."""
        return node_queries.pool_has_node_in(conn, account, pool_key, NodeState.LEAVING_POOL.value)

    def _left(self, conn: Connection, account: str, pool_key: str, now: datetime) -> None:
        """A node that waited for its tasks left: the pool counts it no more, and its resize ends
        with the last such node."""
        pool = POOLS.get(conn, (account,), (pool_key,), for_update=True)
        if pool is None:
            return
        dedicated, low_priority = node_queries.count_by_kind(conn, account, pool_key)
        body = {**pool.body, "currentDedicatedNodes": dedicated, "currentLowPriorityNodes": low_priority}
        resizing = body["allocationState"] == AllocationState.RESIZING.value
        if resizing and not self.leaving(conn, account, pool_key):
            body = pool_rules.with_allocation_state(body, AllocationState.STEADY, now)
        POOLS.update(conn, pool, body, now)


def retire_agent_without_nodes(ctx: ServiceContext, conn: Connection, agent_id: str) -> None:
    """An agent whose last node left the pool has nothing more to do: its credential ends."""
    if not node_queries.agent_has_nodes(conn, agent_id):
        node_queries.delete_agent(conn, agent_id)
        reservations.forget_agent(conn, agent_id)
        ctx.agent_gone_after(conn, agent_id, retired=True)
