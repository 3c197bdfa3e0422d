"""Prefetch: an active task reserved for a node, its run waiting in the queue of the node's agent.

The agent starts a reserved run the moment one of the node's slots frees (without waiting for the
server's answer to its exit report) and reports it ``started``; only then does the task become
``running`` on that node. Until then the task is ``active`` in the API (no nodeInfo, not counted as
running), and its reservation can be cancelled: the server tells the agent to drop the run (or kill
it, had it started meanwhile) and the task is free again only when the agent answers ``unreserved``
(or ``exited``: the run ran, and its result counts), so a task never runs twice.
"""

from __future__ import annotations

from typing import Any, Mapping

from .nodes import SCHEDULABLE

#: How many slots' worth of tasks a node may hold reserved, per slot of its own.
import os as _os
PREFETCH_DEPTH = int(_os.environ.get("XB_DEPTH", "1"))
#: A reservation this old is taken back (two-phase) when another node of its pool has a free slot and
#: nothing else to run: its own node's tasks may run long (or wait for it, as a job manager does).
STEAL_AFTER_SECONDS = 0.5


def reservable(slots: int, reserved: int) -> int:
    """Slots' worth of tasks a node can still take in reservations."""
    return max(0, slots * PREFETCH_DEPTH - reserved)


def may_start(task_state: str, job_state: str, node: Mapping[str, Any] | None, agent_id: str) -> bool:
    """Whether a reserved run the agent started may become the task's run: the task still active, its job
    active, the node (its row's columns; None when it is gone) still the agent's and taking tasks."""
    return (task_state == "active" and job_state == "active" and node is not None and node["agent_id"] == agent_id
            and node["state"] in SCHEDULABLE and node["scheduling_state"] == "enabled"
            and node["pending_restart"] is None)
