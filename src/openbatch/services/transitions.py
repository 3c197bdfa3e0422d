"""A task's state change with the job's counters and its node's slots, always in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from ..domain import commands, counts, multi_instance, nodes
from ..store import subtask_queries
from ..store.engine import Connection
from ..store.records import NODES, TASKS, Record, adjust_counters
from ..store.task_queries import nodes_by_pk
from . import task_events
from .context import ServiceContext

Json = dict[str, Any]



def apply(conn: Connection, job: Record, task: Record, body: Json, now: datetime) -> Record:
    """Store the task's new body and move the job's counters by the same step."""
    old = task.body
    change = counts.delta(
        old["state"], old.get("executionInfo", {}).get("result"),
        body["state"], body.get("executionInfo", {}).get("result"),
        old["requiredSlots"],
    )
    adjust_counters(conn, job.pk, change)
    task_events.changed(conn, old, body, now)
    return TASKS.update(conn, task, body, now)


def insert_tasks(conn: Connection, job: Record, bodies: Sequence[Json], now: datetime) -> list[Record]:
    """New active tasks of ``job`` and the job's counters moved by them, in one step."""
    records = TASKS.insert_many(conn, (job.pk,), bodies, now)
    added: counts.Counter[int] = counts.Counter()  # tasks added, by their requiredSlots
    for record in records:
        added[record.body["requiredSlots"]] += 1
    change: counts.Counter[str] = counts.Counter()
    for slots, number in added.items():
        for name, value in counts.delta(None, None, "active", None, slots).items():
            change[name] += value * number
    adjust_counters(conn, job.pk, change)
    task_events.added(conn, len(records))
    return records


@dataclass(frozen=True, slots=True)
class TaskChange:
    """One task's new body in a batch, with the non-body columns that change with it."""

    job_pk: int
    task: Record
    body: Json
    columns: Mapping[str, Any]
    #: A state the task passed through on the way (a reserved run started and ended in one report):
    #: its events count both steps; the job's counters move by the one from ``task`` to ``body``.
    via: Json | None = None


def apply_many(conn: Connection, changes: Sequence[TaskChange], now: datetime) -> list[Record]:
    """:func:`apply` for a batch: one counter update per job, one executemany for the tasks.

    A task appears at most once; changes naming other ``columns`` go in a statement of their own.
    """
    per_job: dict[int, dict[str, int]] = {}
    for change in changes:
        old, new = change.task.body, change.body
        total = per_job.setdefault(change.job_pk, {})
        for name, step in counts.delta(
            old["state"], old.get("executionInfo", {}).get("result"),
            new["state"], new.get("executionInfo", {}).get("result"),
            old["requiredSlots"],
        ).items():
            total[name] = total.get(name, 0) + step
        if change.via is not None:
            task_events.changed(conn, old, change.via, now)
            old = change.via
        task_events.changed(conn, old, new, now)
    for job_pk, total in per_job.items():
        adjust_counters(conn, job_pk, {name: step for name, step in total.items() if step})
    return TASKS.update_many(conn, [(c.task, c.body, c.columns) for c in changes], now)


def occupy_node(conn: Connection, node: Record, slots: int, now: datetime, *, tasks: int = 1) -> Record:
    """``tasks`` tasks took ``slots`` slots in all on ``node`` (the caller holds the node row)."""
    running = int(node.row["running_tasks"]) + tasks
    values = {"used_slots": int(node.row["used_slots"]) + slots, "running_tasks": running}
    return _set_usage(conn, node, values, now)


def _set_usage(conn: Connection, node: Record, values: dict[str, Any], now: datetime) -> Record:
    """Store a node's new slot usage (and idle <-> running when that changes; the body only then)."""
    state = nodes.busy_state_of(node.row["state"], node.row["scheduling_state"], values["running_tasks"])
    if state is not None:
        return NODES.update(conn, node, nodes.with_state(node.body, state, now), now, extra=values)
    NODES.set_columns(conn, node.pk, **values)
    return node.with_columns(values)


def vacate_node(conn: Connection, node_pk: int, slots: int, now: datetime, *, ran: bool, succeeded: bool) -> Record | None:
    """A task left its node (finished, requeued or terminated): free its slots and count the run."""
    node = NODES.get_by_pk(conn, node_pk, for_update=True)
    if node is None:
        return None
    return _vacate(conn, node, Departures(1, slots, int(ran), int(ran and succeeded)), now)


@dataclass(slots=True)
class Departures:
    """What left one node in a batch: tasks, their slots, and how many of them ran and succeeded."""

    tasks: int = 0
    slots: int = 0
    ran: int = 0
    succeeded: int = 0

    def add(self, slots: int, *, ran: bool, succeeded: bool, held: bool = True) -> None:
        """``held``: the task held its slots on the node (not a run that started and ended in one report)."""
        if held:
            self.tasks += 1
            self.slots += slots
        self.ran += int(ran)
        self.succeeded += int(ran and succeeded)


def vacate_nodes(conn: Connection, departures: Mapping[int, Departures], now: datetime,
                 settle_later: set[int] | None = None) -> list[Record]:
    """:func:`vacate_node` for a batch: the nodes are read in one statement, then updated one each.

    With ``settle_later``, a node whose last task left keeps its state for now and its pk
    goes into the set: the caller's scheduling round in the same transaction usually fills
    it again, and :func:`settle_nodes` then finds nothing to change (instead of rewriting
    the node's body to idle and back to running).
    """
    if not departures:
        return []
    return [_vacate(conn, node, departures[node.pk], now, settle_later) for node in nodes_by_pk(conn, departures)]


def settle_nodes(conn: Connection, node_pks: set[int], now: datetime) -> None:
    """The state the nodes of ``node_pks`` owe their usage (idle, offline) after :func:`vacate_nodes`."""
    if not node_pks:
        return
    for node in nodes_by_pk(conn, node_pks):
        state = nodes.busy_state_of(node.row["state"], node.row["scheduling_state"], int(node.row["running_tasks"]))
        if state is not None:
            NODES.update(conn, node, nodes.with_state(node.body, state, now), now)


def _vacate(conn: Connection, node: Record, gone: Departures, now: datetime,
            settle_later: set[int] | None = None) -> Record:
    running = max(0, int(node.row["running_tasks"]) - gone.tasks)
    values = {
        "used_slots": max(0, int(node.row["used_slots"]) - gone.slots),
        "running_tasks": running,
        "total_tasks_run": int(node.row["total_tasks_run"]) + gone.ran,
        "total_tasks_succeeded": int(node.row["total_tasks_succeeded"]) + gone.succeeded,
    }
    if settle_later is not None and running == 0:
        if nodes.busy_state_of(node.row["state"], node.row["scheduling_state"], 0) is not None:
            settle_later.add(node.pk)   # (a node already idle has nothing to settle: not read again)
        NODES.set_columns(conn, node.pk, **values)
        return node.with_columns(values)
    return _set_usage(conn, node, values, now)


def stop_on_node(ctx: ServiceContext, conn: Connection, job: Record, task: Record, body: Json, now: datetime) -> Record:
    """Take a preparing/running task off its node (terminated, requeued): kill its process, free its slots."""
    run_id, node_pk = task.row.get("run_id"), task.row.get("node_pk")
    task = apply(conn, job, task, body, now)
    TASKS.set_columns(conn, task.pk, run_id=None, node_pk=node_pk if body["state"] == "completed" else None)
    if "multiInstanceSettings" in body:
        end_subtasks(ctx, conn, task.pk, now)
    if node_pk is not None:
        node = vacate_node(conn, node_pk, body["requiredSlots"], now, ran=run_id is not None, succeeded=False)
        if node is not None and run_id:
            ctx.send(conn, node.row["agent_id"], [commands.kill_command(run_id)])
        if node is not None:
            after_vacated(ctx, conn, node, now)
        ctx.wake_after(conn)  # its slots are free for other tasks (and a requeued task may run again)
    return task


def after_vacated(ctx: ServiceContext, conn: Connection, node: Record, now: datetime) -> None:
    """What waited for a node's last task (leaving its pool, a restart): see ``ServiceContext.node_vacated``."""
    if not node.row["running_tasks"]:
        ctx.node_vacated(conn, node, now)


def end_subtasks(ctx: ServiceContext, conn: Connection, task_pk: int, now: datetime) -> None:
    """A multi-instance task's attempt ended (its primary exited, or the task was stopped): its subtasks
    complete, their runs are killed (with what their coordination left running) and their nodes freed."""
    for subtask in subtask_queries.of_task(conn, task_pk, for_update=True):
        if subtask.run_id is None:
            continue
        subtask.body = multi_instance.ended_with_task(subtask.body, now, subtask.coordinated)
        run_id, subtask.run_id = subtask.run_id, None
        subtask_queries.save(conn, subtask)
        if subtask.node_pk is None:
            continue
        node = vacate_node(conn, subtask.node_pk, 1, now, ran=True, succeeded=subtask.coordinated)
        if node is not None:
            ctx.send(conn, node.row["agent_id"], [commands.kill_command(run_id)])
            after_vacated(ctx, conn, node, now)
