"""Preempting low-priority nodes, as Azure takes spot VMs back (domain/spot.py), and their return.

A preempted node's running tasks go back to the queue (requeued, their processes killed), the
node shows ``preempted`` (it stays in its pool and counts as low-priority) and takes no task;
``recovery`` later it comes back as after a reimage (its start task and the jobs' preparation
tasks run again). Preemptions come from the server's rate setting, or on request
(:meth:`PreemptionService.preempt`, ``openbatch preempt``), so a user can rehearse one.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Sequence

from ..domain import clock, nodes as node_rules
from ..domain.errors import BatchError, not_found
from ..domain.nodes import NodeState
from ..domain.spot import PREEMPTIBLE, preempted_in
from ..store import node_queries
from ..store.engine import Connection
from ..store.records import NODES, Record
from .context import ServiceContext, require_pool
from .node_ops import NodeOperations


#: The longest time one pass draws preemptions for.
MAX_PASS_SECONDS = 5.0


class PreemptionService:
    def __init__(self, ctx: ServiceContext, node_ops: NodeOperations, rng: random.Random | None = None) -> None:
        self.ctx = ctx
        self.node_ops = node_ops
        self.rng = rng or random.Random()
        self._last_pass: datetime | None = None

    def preempt(self, account: str, pool_id: str, node_ids: Sequence[str] = ()) -> list[str]:
        """Preempt the pool's given low-priority nodes now (none given: every one that can be); their ids."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            pool = require_pool(conn, account, pool_id)
            key = pool.row["id_key"]
            if node_ids:
                nodes = []
                for node_id in node_ids:
                    node = NODES.get(conn, (account, key), (node_id,), for_update=True)
                    if node is None:
                        raise not_found("NodeNotFound", "node", node_id)
                    if node.body.get("isDedicated", True) or node.body["state"] not in PREEMPTIBLE:
                        raise BatchError("OperationNotValidOnNode", "Only a low-priority node that holds a VM "
                                         "(idle, running, offline or starting its tasks) can be preempted.",
                                         [("NodeId", node_id), ("NodeState", node.body["state"]),
                                          ("IsDedicated", str(node.body.get("isDedicated", True)).lower())])
                    nodes.append(node)
            else:
                nodes = node_queries.low_priority_nodes(conn, account, key, PREEMPTIBLE)
            for node in nodes:
                self.preempt_in(conn, node, now)
            return [node.body["id"] for node in nodes]

    def preempt_in(self, conn: Connection, node: Record, now: datetime) -> Record:
        """(Node locked.) Its tasks back to the queue, then ``preempted`` until it recovers."""
        node = self.node_ops.take_down(conn, node, "requeue", now)
        return NODES.update(conn, node, node_rules.with_state(node.body, NodeState.PREEMPTED, now), now,
                            extra={"used_slots": 0, "running_tasks": 0, "pending_restart": None,
                                   "start_run_id": None})

    def run_due(self) -> None:
        """(The timer, about once a second.) Preempt at the configured rate; bring back the nodes
        preempted ``recovery`` ago."""
        now = self.ctx.now()
        spot = self.ctx.spot
        # a pass covers the time since the one before, but no more than MAX_PASS_SECONDS: after a gap (another
        # server led, the loop was held up) the nodes must not all be preempted at once
        seconds = min(MAX_PASS_SECONDS, (now - self._last_pass).total_seconds()) if self._last_pass else 0.0
        self._last_pass = now
        drawing = spot.rate_per_hour > 0 and seconds > 0
        with self.ctx.store.read() as conn:   # most passes have nothing to do: no writer's lock for them
            if not node_queries.preemption_work(conn, clock.naive(now - spot.recovery), drawing):
                return
        with self.ctx.store.write() as conn:
            if drawing:
                for node in node_queries.low_priority_nodes(conn, None, None, PREEMPTIBLE):
                    if preempted_in(spot, seconds, self.rng):
                        self.preempt_in(conn, node, now)
            for node in node_queries.preempted_before(conn, clock.naive(now - spot.recovery)):
                self.node_ops.restart_in(conn, node, True, now)
