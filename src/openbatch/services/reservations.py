"""Task reservations (prefetch, domain/reservations.py): a reserved run's start, its cancellation, its end.

Scheduling rounds make reservations (scheduler/round.py). Here they end, one of three ways:

- the agent started the run (``started``, or its ``exited`` came first): the task becomes running
  on the node, as if placed there then (:func:`start`);
- the server cancels it (:func:`cancel_tasks`, :func:`cancel_job`, :func:`cancel_node`): two-phase,
  the reservation is marked cancelling and the agent told to drop the run, or kill it had it
  started; the task is free for another round only when the agent answers ``unreserved``
  (:func:`unreserved`), or with the run's ``exited`` (it ran to its end before the word came:
  its result counts);
- the agent is gone (lost, dropped, its node's allocation replaced): nothing it held can start
  any more, and its reservations are simply forgotten (:func:`forget_agent`).

A reservation whose command never reached its agent (an answer lost on the way) is forgotten by
:func:`forget_undelivered`, as running tasks are requeued (services/agents.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from .. import metrics
from ..domain import clock, commands, execution
from ..domain.reservations import may_start, may_yield, to_yield
from ..store import reservation_queries as queries
from ..store.engine import Connection, after_commit
from ..store.records import POOLS, TASKS, Record
from ..store.reservation_queries import Reservation
from ..store.task_queries import jobs_by_pk, nodes_by_pk, task_rows_by_run
from . import transitions
from .context import ServiceContext

Json = dict[str, Any]

#: The reservation columns a started run's task leaves behind.
CLEARED = {"reserved_run_id": None, "reserved_node_pk": None, "reserved_agent_id": None, "reserved_at": None}


# -- cancelling ---------------------------------------------------------------------------------


def cancel(ctx: ServiceContext, conn: Connection, found: Iterable[Reservation], *, ended: bool = False) -> int:
    """Cancel reservations: each is marked cancelling and its agent told to drop (or kill) its run.
    Those already cancelling are left as they are. How many were cancelled.

    ``ended``: their tasks ended (terminated, deleted): the reservations end now, the kill still goes,
    and whatever their runs report later is another run's (a reactivated task starts afresh)."""
    live = [reservation for reservation in found if reservation.node_pk is not None or ended]
    if not live:
        return 0
    if ended:
        queries.clear(conn, [reservation.task_pk for reservation in live])
    else:
        queries.mark_cancelling(conn, [reservation.task_pk for reservation in live])
    kills: dict[str, list[Any]] = defaultdict(list)
    for reservation in live:
        if reservation.agent_id:
            kills[reservation.agent_id].append(commands.kill_command(reservation.run_id))
    for agent_id, batch in kills.items():
        ctx.send(conn, agent_id, batch)
    after_commit(conn, lambda: metrics.RESERVATIONS_CANCELLED.inc(len(live)))
    return len(live)


def cancel_tasks(ctx: ServiceContext, conn: Connection, task_pks: Sequence[int], *, ended: bool = False) -> int:
    """The tasks' reservations (a task updated; ``ended``: terminated or deleted)."""
    return cancel(ctx, conn, queries.of_tasks(conn, task_pks), ended=ended)


def cancel_job(ctx: ServiceContext, conn: Connection, job_pk: int) -> int:
    """The job's reservations (it is disabled, terminated or deleted, or its limits changed)."""
    return cancel(ctx, conn, queries.of_job(conn, job_pk))


def cancel_node(ctx: ServiceContext, conn: Connection, node_pk: int) -> int:
    """The node's reservations (it leaves its pool, restarts, stops taking tasks or gets a time limit)."""
    return cancel(ctx, conn, queries.of_node(conn, node_pk))


def yield_to(ctx: ServiceContext, conn: Connection, job: Record) -> int:
    """The job has tasks to run: the reservations of lower-priority jobs in its pool are cancelled, so that
    the slots they would take go to it first (priority is kept as without prefetch), and so are those of
    other jobs past one slots' worth of a node's queue (deep queues serve one job alone)."""
    pool_key = job.row["pool_id_key"]
    if not pool_key or job.body.get("state") != "active" or not ctx.prefetch:
        return 0
    account, priority = job.row["account"], int(job.body.get("priority", 0))
    if not may_yield(queries.lowest_priority_beside(conn, account, pool_key, job.pk), priority):
        return 0   # (the pool serves this job alone, or others above it: its queues are not read)
    return cancel(ctx, conn, to_yield(queries.queues_of_pool(conn, account, pool_key), job.pk, priority))


def tasks_added(ctx: ServiceContext, conn: Connection, job: Record) -> int:
    """Tasks were added to the job (``job`` as read before they were): one that had no active task comes to
    its pool now, and what it should not wait behind yields to it (:func:`yield_to`). One that had some came
    before, and its pool's rounds have served it beside the others since (in priority order, one round
    deep): nothing is read, which is one statement fewer for each AddTaskCollection of an ingest (PostgreSQL,
    bench figure 3, alternated: 24,177-24,717 tasks/s reading it each time, 25,434-25,468 so)."""
    return yield_to(ctx, conn, job) if job.row["task_active"] == 0 else 0


def forget_agent(conn: Connection, agent_id: str) -> None:
    """The agent is gone (or fenced itself): nothing it held can start; its reservations end here."""
    queries.clear(conn, [reservation.task_pk for reservation in queries.of_agent(conn, agent_id)])


def forget_undelivered(ctx: ServiceContext, conn: Connection, agent_id: str, have: set[str], before: datetime) -> int:
    """The agent's reservations made before ``before`` whose run it does not have (``have``: queued,
    running or being killed there, or on their way to it): the command was lost on the way, or the
    agent dropped it with its node; they end. Those being cancelled that it still has get their kill
    again (it may have been lost with a server). How many ended."""
    found = queries.of_agent_before(conn, agent_id, clock.naive(before))
    lost = [reservation.task_pk for reservation in found if reservation.run_id not in have]
    queries.clear(conn, lost)
    if lost:
        ctx.wake_after(conn)
    again = [commands.kill_command(reservation.run_id) for reservation in found
             if reservation.node_pk is None and reservation.run_id in have]
    ctx.send(conn, agent_id, again)
    return len(lost)


def unreserved(ctx: ServiceContext, conn: Connection, run_ids: Sequence[str]) -> None:
    """The agent dropped (or killed) these reserved runs: their tasks are free for another round."""
    rows = queries.rows_by_run(conn, run_ids)
    if rows:
        queries.clear(conn, [row.pk for row in rows.values()])
        ctx.wake_after(conn)


# -- starting -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A reserved run whose exit came with its start: its task as read (still active and reserved), the
    body it has running on ``node_pk`` (not stored: the caller stores its end, one write for both)."""

    job: Record
    task: Record
    running: Json
    node_pk: int | None


def start(ctx: ServiceContext, conn: Connection, agent_id: str, events: Sequence[Json],
          now: datetime, *, merge_exits: bool = True) -> dict[str, StartedRun]:
    """Reserved runs the agent started (``started``) or already finished (``exited``): their tasks become
    running on the node, as if placed there when the run started.

    With ``merge_exits``, a finished run's start is not stored but returned, by run id, for the caller
    to store with its end (a task's row written once, not twice; the node's slots taken and freed in one
    step), except in a job whose failed tasks may end or disable it (those take their reports one by one).
    The caller must store those ends before anything else of the transaction may change their tasks or jobs.

    A ``started`` run of a reservation that is cancelling is not applied (its kill is on the way); one
    that may not start any more (the task, its job or the node changed without cancelling it first) is
    cancelled now; one the server does not know at all is killed. An ``exited`` run ran to its end:
    if its task is still active, its result counts (the task runs on the node for that moment, and the
    caller's exit handling completes it), however its reservation stood.
    """
    rows = queries.rows_by_run(conn, [str(event["id"]) for event in events])
    exits = {str(event["id"]) for event in events if event.get("type") == "exited"}
    if not rows:
        _kill_unknown(ctx, conn, agent_id, [str(e["id"]) for e in events if e.get("type") == "started"])
        return {}
    jobs = jobs_by_pk(conn, {row.job_pk for row in rows.values()})
    node_pks = {row.reserved_node_pk for row in rows.values() if row.reserved_node_pk is not None}
    nodes = {node.pk: node for node in nodes_by_pk(conn, node_pks)} if node_pks else {}
    changes: list[transitions.TaskChange] = []
    pools: dict[tuple[str, str], str] = {}
    taken: dict[int, tuple[int, int]] = {}
    released: dict[int, int] = defaultdict(int)   # the reserved slots the started runs leave, by node
    cancelled: list[Reservation] = []
    ended: list[int] = []
    unknown: list[str] = []
    started: dict[str, StartedRun] = {}
    for event in events:
        run_id = str(event["id"])
        row = rows.pop(run_id, None)
        if row is None:
            if event.get("type") == "started":
                unknown.append(run_id)
            continue
        if row.reserved_agent_id != agent_id:
            rows[run_id] = row   # (not this agent's to say)
            continue
        job = jobs.get(row.job_pk)
        node = nodes.get(row.reserved_node_pk) if row.reserved_node_pk is not None else None
        finished = event.get("type") == "exited"
        if not finished:
            if run_id in exits or row.reserved_node_pk is None:
                # its exit in this report decides (a result counts); or cancelling: its kill is on the way
                rows[run_id] = row
                continue
            if job is None or not may_start(row.state, job.body["state"], node.row if node else None, agent_id):
                cancelled.append(Reservation(row.pk, run_id, row.reserved_node_pk, agent_id))
                continue
        elif row.state != "active" or job is None:
            ended.append(row.pk)   # (the task ended meanwhile: terminated, its job deleted)
            continue
        task = TASKS.record(row)
        info = _node_info(conn, job, task.body, node, pools) if node is not None else {}
        body = execution.assigned(task.body, info, now, preparing=False)
        if event.get("startTime"):   # (the node's, on the server's clock)
            body["executionInfo"]["startTime"] = event["startTime"]
        on = node.pk if node is not None else None
        if row.reserved_node_pk is not None:
            released[row.reserved_node_pk] -= int(row.required_slots)
        if merge_exits and finished and job.body.get("onTaskFailure") != "performexitoptionsjobaction":
            started[run_id] = StartedRun(job, task, body, on)
            continue
        changes.append(transitions.TaskChange(job.pk, task, body, {"node_pk": on, "run_id": run_id, **CLEARED}))
        if node is not None:
            slots, count = taken.get(node.pk, (0, 0))
            taken[node.pk] = (slots + int(row.required_slots), count + 1)
    transitions.apply_many(conn, changes, now)
    placed = len(changes) + len(started)   # (given to their nodes now, as a round's placements are)
    if placed:
        after_commit(conn, lambda: metrics.SCHEDULER_PLACED.inc(placed))
    for pk, (slots, count) in taken.items():
        transitions.occupy_node(conn, nodes[pk], slots, now, tasks=count)
    queries.move_reserved(conn, released)
    queries.clear(conn, ended)
    cancel(ctx, conn, cancelled)
    _kill_unknown(ctx, conn, agent_id, unknown)
    return started



def _node_info(conn: Connection, job: Record, task: Json, node: Record, pools: dict[tuple[str, str], str]) -> Json:
    """The task's nodeInfo on ``node`` (as the round writes it)."""
    key = (node.row["account"], node.row["pool_id_key"])
    if key not in pools:
        pool = POOLS.get(conn, (key[0],), (key[1],))
        pools[key] = pool.body["id"] if pool is not None else job.body.get("poolInfo", {}).get("poolId", key[1])
    return commands.node_info(pools[key], node.body["id"], job.body["id"], task["id"])


def _kill_unknown(ctx: ServiceContext, conn: Connection, agent_id: str, run_ids: list[str]) -> None:
    """Started runs that are neither a reservation nor (already) a task's run: gone, so killed."""
    if not run_ids:
        return
    current = set(task_rows_by_run(conn, run_ids))
    stale = [run_id for run_id in run_ids if run_id not in current]
    if stale:
        ctx.send(conn, agent_id, [commands.kill_command(run_id) for run_id in stale])
