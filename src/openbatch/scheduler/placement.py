"""Placement: a pure function from a snapshot of one pool to a plan.

Candidates arrive in scheduling order (higher job priority first, then oldest task).
Each is put on a node with enough free slots, chosen by the pool's nodeFillType:
``spread`` takes the node with the most free slots, ``pack`` the fullest node that
still fits. A job's maxParallelTasks caps how many of its tasks run at once. For a
job with a preparation task, the first task placed on a node that has not prepared
for that job starts the preparation there (exactly once per job and node, however
many of its slots fill at the same moment); with waitForSuccess its tasks wait in
``preparing`` until it succeeds, and a node whose preparation failed takes no more tasks
of that job. Without waitForSuccess the job's tasks keep running there whatever the
preparation's outcome, and a failed preparation is not started again for them.

A job manager task with allowLowPriorityNode false runs only on a dedicated node. A multi-instance
task takes as many distinct nodes as it has instances, in one step, or waits.

A node whose allocation ends (``seconds_left``: a Slurm time limit) takes only tasks that can
finish there: one with a maxWallClockTime no longer than the time left, one without a limit
only while more than :data:`DRAIN_SECONDS` are left (then the node drains; when its allocation
ends a new one replaces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

PrepMode = Literal["none", "wait", "nowait"]

#: A node whose allocation ends within this many seconds starts no task without a maxWallClockTime.
DRAIN_SECONDS = 60.0


@dataclass(slots=True)
class NodeCapacity:
    pk: int
    free: int
    affinity_id: str = ""
    prepared: frozenset[int] = frozenset()   # jobs whose preparation succeeded here
    preparing: set[int] = field(default_factory=set)   # jobs whose preparation runs here
    excluded: frozenset[int] = frozenset()   # jobs whose preparation failed here
    seconds_left: float | None = None   # until its allocation ends (None: it does not)
    dedicated: bool = True   # False: a low-priority node


@dataclass(frozen=True, slots=True)
class Candidate:
    task_pk: int
    job_pk: int
    slots: int = 1
    prep: PrepMode = "none"
    affinity_id: str | None = None
    wall_clock: float | None = None   # maxWallClockTime in seconds (None: unlimited)
    dedicated_only: bool = False   # a job manager with allowLowPriorityNode false
    instances: int = 0   # a multi-instance task: this many nodes, each with a free slot, or none (0: not one)


@dataclass(frozen=True, slots=True)
class Placement:
    task_pk: int
    job_pk: int
    node_pk: int
    start_preparation: bool   # run the job preparation task on this node now
    wait_for_preparation: bool   # the task is ``preparing`` until that preparation succeeds
    others: tuple[int, ...] | None = None   # a multi-instance task: the nodes of its subtasks 1..N-1
    #: Only start the job's preparation task on this node: the multi-instance task waits for it there.
    prepare_only: bool = False


def place(
    candidates: Sequence[Candidate],
    nodes: Sequence[NodeCapacity],
    fill: Literal["spread", "pack"] = "spread",
    job_room: Mapping[int, int | None] | None = None,
) -> list[Placement]:
    """The plan for one pool. ``nodes`` are mutated to reflect it (their free slots)."""
    room = dict(job_room or {})
    open_nodes = [n for n in nodes if n.free > 0]
    plan: list[Placement] = []
    for candidate in candidates:
        if not open_nodes:
            break
        limit = room.get(candidate.job_pk)
        if limit is not None and limit <= 0:
            continue
        if candidate.instances:
            steps = _place_instances(candidate, open_nodes, fill)
            plan += steps
            if limit is not None and steps and not steps[0].prepare_only:
                room[candidate.job_pk] = limit - 1
            continue
        node = _choose(candidate, open_nodes, fill)
        if node is None:
            continue
        node.free -= candidate.slots
        if node.free <= 0:
            open_nodes.remove(node)
        if limit is not None:
            room[candidate.job_pk] = limit - 1
        start = wait = False
        job = candidate.job_pk   # its preparation ran here already if it succeeded or failed for good
        if candidate.prep != "none" and job not in node.prepared and job not in node.excluded:
            if candidate.job_pk not in node.preparing:
                node.preparing.add(candidate.job_pk)
                start = True
            wait = candidate.prep == "wait"
        plan.append(Placement(candidate.task_pk, candidate.job_pk, node.pk, start, wait))
    return plan


def _place_instances(candidate: Candidate, open_nodes: list[NodeCapacity], fill: str) -> list[Placement]:
    """A multi-instance task on ``candidate.instances`` distinct nodes (the first is the primary's), or
    nothing when fewer have room now (all or none: nothing is taken then).

    In a job with a preparation task it takes only nodes where that preparation has run (succeeded, with
    waitForSuccess); while too few have, it starts the preparation on as many more nodes with room as it
    lacks (``prepare_only`` steps) and waits: its instances never wait on their nodes, holding them."""
    job = candidate.job_pk
    ready = [node for node in open_nodes if candidate.prep == "none" or job in node.prepared
             or (candidate.prep == "nowait" and job in node.excluded)]
    chosen: list[NodeCapacity] = []
    while len(chosen) < candidate.instances:
        node = _choose(candidate, [n for n in ready if n not in chosen], fill)
        if node is None:
            break
        chosen.append(node)
    if len(chosen) < candidate.instances:
        if candidate.prep == "none":
            return []
        missing = candidate.instances - len(chosen) - sum(
            1 for node in open_nodes if job in node.preparing and node.free >= candidate.slots)
        fresh = [node for node in open_nodes if node.free >= candidate.slots and job not in node.prepared
                 and job not in node.excluded and job not in node.preparing][:max(0, missing)]
        for node in fresh:
            node.preparing.add(job)
        return [Placement(candidate.task_pk, job, node.pk, True, False, prepare_only=True) for node in fresh]
    for node in chosen:
        node.free -= candidate.slots
        if node.free <= 0:
            open_nodes.remove(node)
    return [Placement(candidate.task_pk, job, chosen[0].pk, False, False, tuple(node.pk for node in chosen[1:]))]


def _choose(candidate: Candidate, nodes: list[NodeCapacity], fill: str) -> NodeCapacity | None:
    best: NodeCapacity | None = None
    for node in nodes:
        if node.free < candidate.slots or (candidate.prep == "wait" and candidate.job_pk in node.excluded):
            continue
        if node.seconds_left is not None and not _finishes_in_time(candidate, node.seconds_left):
            continue
        if candidate.dedicated_only and not node.dedicated:
            continue
        if candidate.affinity_id and node.affinity_id == candidate.affinity_id:
            return node
        if best is None or (node.free > best.free if fill == "spread" else node.free < best.free):
            best = node
    return best


def _finishes_in_time(candidate: Candidate, seconds_left: float) -> bool:
    if candidate.wall_clock is None:
        return seconds_left > DRAIN_SECONDS
    return candidate.wall_clock <= seconds_left
