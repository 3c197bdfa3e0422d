"""Prefetch: an active task reserved for a node, its run waiting in the queue of the node's agent.

The agent starts a reserved run the moment one of the node's slots frees (without waiting for the
server's answer to its exit report) and reports it ``started``; only then does the task become
``running`` on that node. Until then the task is ``active`` in the API (no nodeInfo, not counted as
running), and its reservation can be cancelled: the server tells the agent to drop the run (or kill
it, had it started meanwhile) and the task is free again only when the agent answers ``unreserved``
(or ``exited``: the run ran, and its result counts), so a task never runs twice.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from .nodes import SCHEDULABLE

#: How many slots' worth of tasks a node may hold reserved, per slot of its own.
#: bench figure 1 (10,000 `/bin/true` on 2 nodes x 4 slots, alternated runs): depth 1, 3, 6 gave SQLite
#: 1,008/995, 1,151/1,193/1,143/1,219, 1,132/1,201 tasks/s; PostgreSQL 494/472, 659/559/616/605, 735/769.
#: A report's round trip takes longer than a slot's worth of short tasks: the queue must outlast it.
PREFETCH_DEPTH = 6
#: A reservation this old is taken back (two-phase) when another node of its pool has a free slot and
#: nothing else to run: its own node's tasks may run long (or wait for it, as a job manager does).
STEAL_AFTER_SECONDS = 0.5


def reservable(slots: int, reserved: int, depth: int = PREFETCH_DEPTH) -> int:
    """Slots' worth of tasks a node can still take in reservations."""
    return max(0, slots * depth - reserved)


def depth_for(jobs_with_tasks: int) -> int:
    """How deep nodes reserve: deep while one job is served. Beside another job, a node's queue holds one
    slots' worth, so a job that comes waits behind no more than one round of the other's tasks (the
    deep part of a queue is cancelled for it: :func:`to_yield`)."""
    return PREFETCH_DEPTH if jobs_with_tasks <= 1 else 1


class Held(Protocol):
    """A reservation as :func:`to_yield` reads it."""
    task_pk: int
    job_pk: int
    node_pk: int | None   # (None: being cancelled; such are not read here)
    slots: int        # the slots its task takes
    node_slots: int
    priority: int     # its job's


def may_yield(lowest_beside: int | None, priority: int) -> bool:
    """Whether :func:`to_yield` can find anything for a job of ``priority`` in a pool whose other jobs that
    hold (or may hold) reservations have ``lowest_beside`` as their lowest priority (None: there are none).
    Only jobs of its priority or lower yield to it; when none is there, a pool's reservations need not be read."""
    return lowest_beside is not None and lowest_beside <= priority


def to_yield(held: Sequence[Held], job_pk: int, priority: int) -> list[Held]:
    """Of a pool's reservations, in the order each node's agent starts them, those a job of ``priority``
    that has tasks to run should not wait behind: every one of a lower-priority job, and those of other
    jobs of its priority (with which it takes turns) past the first slots' worth of their node's queue."""
    queued: dict[int, int] = {}
    found = []
    for reservation in held:
        ahead = queued.get(reservation.node_pk, 0)
        queued[reservation.node_pk] = ahead + reservation.slots
        if reservation.job_pk != job_pk and (reservation.priority < priority or (
                reservation.priority == priority and ahead >= reservation.node_slots)):
            found.append(reservation)
    return found


def may_start(task_state: str, job_state: str, node: Mapping[str, Any] | None, agent_id: str) -> bool:
    """Whether a reserved run the agent started may become the task's run: the task still active, its job
    active, the node (its row's columns; None when it is gone) still the agent's and taking tasks."""
    return (task_state == "active" and job_state == "active" and node is not None and node["agent_id"] == agent_id
            and node["state"] in SCHEDULABLE and node["scheduling_state"] == "enabled"
            and node["pending_restart"] is None)
