"""One scheduling round: snapshot, placement (pure), apply, all in one write transaction.

The snapshot reads (and locks) per pool with free slots its nodes, its active jobs and
their active tasks in scheduling order (store/schedule_queries.py);
:func:`openbatch.scheduler.placement.place` makes the plan; the apply step re-checks each
step against what the snapshot read (states, free slots) and writes the whole plan as a
batch: one executemany for the tasks, one counter update per job, one update per node.
Commands for the agents leave after the commit.

The services run a round for the pools whose slots an exit report freed inside that
report's transaction: :class:`SchedulingRound` gives them :meth:`schedule_pool_in` as the
context's ``schedule_in`` (services never import the scheduler).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import metrics
from ..domain import clock, commands, execution, multi_instance, pools as pool_rules
from ..domain.reservations import PREFETCH_DEPTH, STEAL_AFTER_SECONDS, depth_for, reservable
from ..services import reservations, transitions
from ..services.context import PoolRound, ServiceContext
from ..services.dependencies import unmet_dependencies
from ..store import reservation_queries, schedule_queries as queries, subtask_queries
from ..store.engine import Connection, after_commit
from ..store.records import NODES, POOLS, PREP_RELEASE, TASKS, Record
from ..store.task_queries import preparation_marks
from .placement import Candidate, NodeCapacity, Placement, place

Json = dict[str, Any]

#: Tasks looked at per free slot when some may be turned away (maxParallelTasks, failed preparations).
LOOKAHEAD = 4
#: Active tasks read at a time from a job whose tasks may wait for dependencies.
DEPENDENCY_PAGE = 200


class SchedulingRound:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def schedule(self) -> Round:
        """Place what can be placed now."""
        result = Round()
        for account, pool_key in self._pools_with_room():
            done = self._schedule_pool(account, pool_key)
            result.placed += len(done.placed)
            result.again = result.again or done.more
        metrics.SCHEDULER_ROUNDS.inc()
        return result

    def _pools_with_room(self) -> list[tuple[str, str]]:
        with self.ctx.store.read_statement() as conn:   # one SELECT: no BEGIN/COMMIT round trips
            return queries.pools_with_room(conn, self.ctx.prefetch)

    def _schedule_pool(self, account: str, pool_key: str) -> PoolRound:
        with self.ctx.store.write() as conn:
            return self.schedule_pool_in(conn, account, pool_key)

    def schedule_pool_in(self, conn: Connection, account: str, pool_key: str) -> PoolRound:
        """A round for one pool in the caller's write transaction: the tasks it placed, and whether
        another round at once may place more (it placed tasks and left slots free without reading
        every candidate: a job's maxParallelTasks may have kept the unread ones back).

        Exit reports call it for the pools whose slots they freed, so a freed slot takes
        its next task in the same transaction.
        """
        queries.read_round_ahead(conn, account, pool_key, self.ctx.prefetch)   # with the pool's read
        pool = POOLS.get(conn, (account,), (pool_key,))
        if pool is None or pool.body["state"] != "active":
            return PoolRound()
        node_rows = self._open_nodes(conn, account, pool_key)
        # (read now, with the pool: what the round writes before it steals would make it a read of its own)
        holding = queries.holding_reservations(conn, account, pool_key) if self.ctx.prefetch else set()
        now = clock.naive(self.ctx.now())
        nodes = {pk: NodeCapacity(pk=pk, free=max(0, row.slots - row.used_slots - row.reserved),
                                  affinity_id=f"TVM:{row.id}", seconds_left=None if row.available_until is None
                                  else (row.available_until - now).total_seconds(), dedicated=bool(row.dedicated))
                 for pk, row in node_rows.items()}
        timed = any(node.seconds_left is not None for node in nodes.values())
        free = sum(n.free for n in nodes.values())
        # prefetch: what the nodes can hold in reservations beyond their slots (none on timed pools)
        spare = {} if timed or not self.ctx.prefetch else {
            pk: reservable(row.slots, row.reserved) for pk, row in node_rows.items()}
        if free <= 0 and not any(spare.values()):
            return PoolRound()
        jobs = self._jobs(conn, account, pool_key)
        depth = depth_for(len(jobs))
        if spare and depth < PREFETCH_DEPTH:   # beside another job: shallow
            spare = {pk: reservable(node_rows[pk].slots, node_rows[pk].reserved, depth) for pk in spare}
            if free <= 0 and not any(spare.values()):
                return PoolRound()
        prepared = [pk for pk, job in jobs.items() if "jobPreparationTask" in job.body]
        self._mark_preparation(conn, prepared, nodes)
        room = {pk: self._job_room(job) for pk, job in jobs.items()}
        # Only a job's maxParallelTasks or a node that failed its preparation can turn a candidate
        # away (dependencies are checked while reading, and no candidate needs more slots than
        # the widest node has free): otherwise as many candidates as free slots will all be placed.
        # (and a multi-instance task that finds too few nodes with room)
        multi = multi_instance.pool_problem(pool.body) is None
        limited = prepared or timed or multi or any(limit is not None for limit in room.values())
        order = pool_rules.job_default_order(pool.body)
        shared: set[int] = set()   # jobs served beside others of their priority: their turn is recorded
        wanted = free + sum(spare.values())
        # (a reservation holds room for several tasks, but each must fit the node's slots: a wider one
        # could never start, and would hold up the node's queue behind it for good)
        widest = max(max(n.free for n in nodes.values()),
                     max((min(left, node_rows[pk].slots) for pk, left in spare.items()), default=0))
        limit = wanted * LOOKAHEAD if limited else wanted
        tasks = self._candidates(conn, jobs, widest, limit, order, shared, nodes, timed, multi)
        if not tasks:
            self._steal(conn, account, pool_key, nodes, holding)
            return PoolRound()
        fill = pool.body.get("taskSchedulingPolicy", {}).get("nodeFillType", "spread")
        candidates = [candidate for candidate, _ in tasks.values()]
        plan = place(candidates, list(nodes.values()), fill, room) if free > 0 else []
        snapshot = Snapshot(pool, jobs, {pk: task for pk, (_, task) in tasks.items()}, node_rows)
        placed, slots = self._apply(conn, account, snapshot, plan)
        if placed:
            after_commit(conn, lambda: metrics.SCHEDULER_PLACED.inc(len(placed)))
        reserved = self._reserve(conn, account, snapshot, candidates, plan, spare, room, fill)
        # A reservation takes a turn ahead of time, after this round's direct placements: recorded so (even
        # while the job has no rival yet), a job that comes meanwhile is served next.
        later = set(reserved) if order == "none" else set()
        served = sorted(shared.intersection(step.job_pk for step in plan) - later)
        now = clock.naive(self.ctx.now())
        if served:
            queries.mark_served(conn, served, now)
        if later:
            queries.mark_served(conn, sorted(later), now + timedelta(microseconds=1))
        if len(tasks) < limit:   # every candidate was read: slots left free may go to reservations elsewhere
            self._steal(conn, account, pool_key, nodes, holding)
            return PoolRound(placed)
        return PoolRound(placed, bool(placed) and free > slots)

    def _open_nodes(self, conn: Connection, account: str, pool_key: str) -> dict[int, Any]:
        """The pool's nodes that can take a task now (rows, locked; bodies decoded only when used)."""
        return queries.open_nodes(conn, account, pool_key, self.ctx.prefetch)

    def _jobs(self, conn: Connection, account: str, pool_key: str) -> dict[int, Record]:
        """The pool's active jobs with active tasks and room to run more, in scheduling order."""
        return {job.pk: job for job in queries.active_jobs(conn, account, pool_key) if self._job_room(job) != 0}

    def _candidates(self, conn: Connection, jobs: dict[int, Record], widest: int, limit: int, order: str,
                    shared: set[int], nodes: dict[int, NodeCapacity], timed: bool = False, multi: bool = False
                    ) -> dict[int, tuple[Candidate, Any]]:
        """Up to ``limit`` placeable tasks in scheduling order, with their locked rows.

        Jobs of higher priority come first. Among jobs of equal priority, the pool's
        jobDefaultOrder decides: ``creationtime`` serves the oldest job's tasks first;
        ``none`` (the default) serves them uniformly, one task of each job in turn, the
        jobs served least recently first (so rounds of one free slot, as exit reports make,
        take the jobs in turn). Within a job, the oldest task first.

        What cannot be placed this round is no candidate, so that however much of it
        comes first it never holds back what is behind: jobs whose preparation task
        failed on every node with free slots, tasks needing more slots than any node
        has free (or can reserve: ``widest``), tasks whose dependencies are unmet, and multi-instance tasks on a pool that cannot
        run them (``multi`` False; they were refused when the job's pool was known then).
        """
        streams: list[_JobTasks] = []
        for job in jobs.values():
            prep = job.body.get("jobPreparationTask")
            mode = "none" if prep is None else ("wait" if prep.get("waitForSuccess", True) else "nowait")
            if mode == "wait" and all(job.pk in node.excluded for node in nodes.values()):
                continue
            streams.append(_JobTasks(conn, job, mode, widest, timed, multi))
        candidates: dict[int, tuple[Candidate, Any]] = {}
        for group in _equal_priority_groups(streams, order):
            if len(group) > 1:
                shared.update(stream.job.pk for stream in group)
            while group and len(candidates) < limit:
                room = limit - len(candidates)
                share = -(-room // len(group))   # ceil: each job's part of the room
                serving, waiting = (group[:room], group[room:]) if share == 1 else (group, [])
                taken = [stream.take(share) for stream in serving]
                for item in _interleaved(taken):
                    candidates[item[0].task_pk] = item
                    if len(candidates) >= limit:
                        break
                # the jobs not served this pass go first in the next; a job with no more leaves
                group = waiting + [stream for stream, got in zip(serving, taken) if len(got) == share]
            if len(candidates) >= limit:
                break
        return candidates

    @staticmethod
    def _job_room(job: Record) -> int | None:
        limit = job.body.get("maxParallelTasks", -1)
        return None if limit in (None, -1) else max(0, limit - int(job.row["task_running"]))

    def _mark_preparation(self, conn: Connection, job_pks: list[int], nodes: dict[int, NodeCapacity]) -> None:
        """Where the preparation tasks of ``job_pks`` ran, run or failed (placement's view of the nodes)."""
        if not job_pks or not nodes:
            return
        rows = preparation_marks(conn, job_pks, list(nodes))
        prepared: dict[int, set[int]] = defaultdict(set)
        excluded: dict[int, set[int]] = defaultdict(set)
        for row in rows:
            node = nodes[row.node_pk]
            if row.prep_state == "running":
                node.preparing.add(row.job_pk)
            elif row.prep_stale:
                continue  # the node rebooted since: the preparation runs again
            elif row.prep_result == "success":
                prepared[row.node_pk].add(row.job_pk)
            elif row.prep_result == "failure":
                excluded[row.node_pk].add(row.job_pk)
        for pk, node in nodes.items():
            node.prepared = frozenset(prepared[pk])
            node.excluded = frozenset(excluded[pk])

    # -- apply -----------------------------------------------------------------------------

    def _apply(self, conn: Connection, account: str, snapshot: "Snapshot", plan: list[Placement]
               ) -> tuple[dict[int, Record], int]:
        """Write the plan's steps that still hold against the snapshot: the tasks placed (by pk, as stored
        now), and the slots they took."""
        now = self.ctx.now()
        url = self.ctx.account_url(account)
        pool_id = snapshot.pool.body["id"]
        nodes: dict[int, Record] = {}
        taken: dict[int, tuple[int, int]] = {}   # node pk -> (slots, tasks) placed there
        changes: list[transitions.TaskChange] = []
        out: dict[str, list[Json]] = defaultdict(list)
        for step in plan:
            task_row, job = snapshot.tasks.get(step.task_pk), snapshot.jobs.get(step.job_pk)
            row = snapshot.nodes.get(step.node_pk)
            if task_row is None or job is None or row is None:
                continue
            task = TASKS.record(task_row)
            if task.body["state"] != "active":
                continue
            if step.prepare_only:   # (a multi-instance task waits for its job's preparation on enough nodes)
                node = nodes.get(row.pk) or NODES.record(row)
                nodes[row.pk] = node
                who = commands.Identity(account, url, pool_id, row.id, snapshot.pool.body)
                out[row.agent_id].append(self._start_preparation(conn, job, node, who, now))
                continue
            slots = task.body["requiredSlots"]
            used, count = taken.get(row.pk, (0, 0))
            if int(row.used_slots) + int(row.reserved) + used + slots > int(row.slots):
                continue
            if step.others is not None:
                others = [snapshot.nodes.get(pk) for pk in step.others]
                if any(other is None or int(other.used_slots) + int(other.reserved) + taken.get(other.pk, (0, 0))[0]
                       + slots > int(other.slots)
                       for other in others):
                    continue
                self._place_instances(conn, account, snapshot, job, task, [row, *others], nodes, taken, changes,
                                      out, now)
                continue
            node = nodes.get(row.pk) or NODES.record(row)
            nodes[row.pk] = node
            taken[row.pk] = (used + slots, count + 1)
            who = commands.Identity(account, url, pool_id, row.id, snapshot.pool.body)
            node_info = commands.node_info(pool_id, row.id, job.body["id"], task.body["id"])
            if step.start_preparation:
                out[row.agent_id].append(self._start_preparation(conn, job, node, who, now))
            run_id = None if step.wait_for_preparation else commands.new_run_id("t")
            body = execution.assigned(task.body, node_info, now, preparing=step.wait_for_preparation)
            changes.append(transitions.TaskChange(job.pk, task, body, {"node_pk": row.pk, "run_id": run_id}))
            if run_id:
                token = self.ctx.task_token(account, job.body, body)
                out[row.agent_id].append(commands.task_command(run_id, who, job.body, body, token))
        placed = {record.pk: record for record in transitions.apply_many(conn, changes, now)}
        for pk, (slots, count) in taken.items():
            transitions.occupy_node(conn, nodes[pk], slots, now, tasks=count)
        for agent_id, batch in out.items():
            self.ctx.send(conn, agent_id, batch)
        return placed, sum(slots for slots, _ in taken.values())

    def _steal(self, conn: Connection, account: str, pool_key: str, nodes: dict[int, NodeCapacity],
               holding: set[int]) -> None:
        """Nodes with free slots and nothing left to run take back the pool's older reservations held by
        other nodes (cancelled two-phase: the tasks are placed when their agents have let them go), so a
        task never waits behind a node's long runs while another node idles. ``holding``: the nodes
        that held reservations when the round began (those it made since are too new to take back)."""
        free = {pk: node.free for pk, node in nodes.items() if node.free > 0}
        if not free or not self.ctx.prefetch or not holding.difference(free):
            return
        before = clock.naive(self.ctx.now() - timedelta(seconds=STEAL_AFTER_SECONDS))
        found = reservation_queries.to_steal(conn, account, pool_key, list(free), max(free.values()), before,
                                             sum(free.values()))
        reservations.cancel(self.ctx, conn, found)

    def _reserve(self, conn: Connection, account: str, snapshot: "Snapshot", candidates: list[Candidate],
                 plan: list[Placement], spare: dict[int, int], room: dict[int, int | None], fill: Any) -> list[int]:
        """Prefetch: reserve the candidates the plan left for the nodes with reservation room, and send each
        node's agent their runs to start as its slots free. Only tasks whose start nothing but a free slot
        decides are reserved: none of a job with maxParallelTasks or a preparation task, no multi-instance
        task. The jobs that got reservations."""
        placed = {step.task_pk for step in plan}
        rest = [candidate for candidate in candidates if candidate.task_pk not in placed and candidate.prep == "none"
                and not candidate.instances and room.get(candidate.job_pk) is None]
        holders = [NodeCapacity(pk=pk, free=left, affinity_id=f"TVM:{snapshot.nodes[pk].id}",
                                dedicated=bool(snapshot.nodes[pk].dedicated))
                   for pk, left in spare.items() if left > 0]
        if not rest or not holders:
            return []
        now = self.ctx.now()
        url = self.ctx.account_url(account)
        pool_id = snapshot.pool.body["id"]
        items: list[tuple[int, str, int, str, int]] = []
        out: dict[str, list[Json]] = defaultdict(list)
        jobs: list[int] = []
        for step in place(rest, holders, fill):
            task_row, job, row = snapshot.tasks[step.task_pk], snapshot.jobs[step.job_pk], snapshot.nodes[step.node_pk]
            if task_row.state != "active" or row.agent_id is None:
                continue
            body = TASKS.record(task_row).body
            run_id = commands.new_run_id("t")
            items.append((task_row.pk, run_id, row.pk, row.agent_id, int(task_row.required_slots)))
            who = commands.Identity(account, url, pool_id, row.id, snapshot.pool.body)
            command = commands.task_command(run_id, who, job.body, body, self.ctx.task_token(account, job.body, body))
            command.reserved = True
            out[row.agent_id].append(command)
            jobs.append(job.pk)
        reservation_queries.reserve(conn, items, clock.naive(now))
        for agent_id, batch in out.items():
            self.ctx.send(conn, agent_id, batch)
        if items:
            after_commit(conn, lambda: metrics.SCHEDULER_RESERVED.inc(len(items)))
        return jobs

    def _place_instances(self, conn: Connection, account: str, snapshot: "Snapshot", job: Record, task: Record,
                         rows: list[Any], nodes: dict[int, Record], taken: dict[int, tuple[int, int]],
                         changes: list[transitions.TaskChange], out: dict[str, list[Json]], now: Any) -> None:
        """A multi-instance task on ``rows`` (the primary's node first): the task runs on the first, its
        subtasks' rows hold the others, and every instance's run leaves for its agent."""
        url = self.ctx.account_url(account)
        pool_id = snapshot.pool.body["id"]
        shared = commands.task_dir(job.body["id"], task.body["id"])
        records = []
        for row in rows:
            record = nodes.get(row.pk) or NODES.record(row)
            nodes[row.pk] = record
            used, count = taken.get(row.pk, (0, 0))
            taken[row.pk] = (used + 1, count + 1)
            records.append(record)
        whos = [commands.Identity(account, url, pool_id, node.body["id"], snapshot.pool.body) for node in records]
        infos = [{"affinityId": f"TVM:{node.body['id']}", "poolId": pool_id, "nodeId": node.body["id"],
                  "taskRootDirectory": shared if instance == 0 else multi_instance.subtask_dir(shared, instance)}
                 for instance, node in enumerate(records)]
        run_ids = [commands.new_run_id("t" if instance == 0 else "m") for instance in range(len(records))]
        body = execution.assigned(task.body, infos[0], now, preparing=False)
        changes.append(transitions.TaskChange(job.pk, task, body, {"node_pk": records[0].pk, "run_id": run_ids[0]}))
        subtask_queries.replace(conn, task.pk, [   # (instance 0: the primary's coordination; its run is the task's)
            subtask_queries.Subtask(0, task.pk, instance, node.pk, run_ids[instance] if instance else None, False,
                                    multi_instance.subtask_started(instance, infos[instance], now))
            for instance, node in enumerate(records)])
        token = self.ctx.task_token(account, job.body, body)
        addresses = [node.body.get("ipAddress") or "127.0.0.1" for node in records]
        for node, command in zip(records, commands.instance_commands(run_ids, whos, addresses, job.body, body, token)):
            out[node.row["agent_id"]].append(command)

    def _start_preparation(self, conn: Connection, job: Record, node: Record, who: commands.Identity, now: Any) -> Json:
        run_id = commands.new_run_id("p")
        prep = job.body["jobPreparationTask"]
        info = commands.execution_info("running", clock.to_wire(now), 0, commands.task_dir(job.body["id"], prep["id"]))
        current = PREP_RELEASE.get(conn, (job.pk,), (who.pool_id, who.node_id), for_update=True)
        if current is None:
            body = {"poolId": who.pool_id, "nodeId": who.node_id, "jobPreparationTaskExecutionInfo": info}
            PREP_RELEASE.insert(conn, (job.pk,), body, now, extra={"node_pk": node.pk, "prep_run_id": run_id})
        else:
            PREP_RELEASE.update(conn, current, {**current.body, "jobPreparationTaskExecutionInfo": info}, now,
                                extra={"node_pk": node.pk, "prep_run_id": run_id, "prep_stale": False})
        return commands.preparation_command(run_id, who, job.body, 0)


class _JobTasks:
    """One job's placeable active tasks in task order, read from the store a page at a time.

    A body is decoded here only when it names dependencies or an affinity (the rest of a
    candidate is in columns); tasks with unmet dependencies are skipped.
    """

    def __init__(self, conn: Connection, job: Record, mode: Any, widest: int, timed: bool = False,
                 multi: bool = False) -> None:
        self.conn = conn
        self.multi = multi   # multi-instance tasks can run on the pool
        self.timed = timed   # some node's allocation ends: each candidate's maxWallClockTime is needed
        self.job = job
        self.mode = mode
        self.widest = widest
        self.waits = bool(job.body.get("usesTaskDependencies"))
        manager = job.body.get("jobManagerTask") or {}
        #: The job manager's id when it must run on a dedicated node (allowLowPriorityNode false).
        self.dedicated_manager = manager.get("id") if manager.get("allowLowPriorityNode") is False else None
        self.after = 0
        self.done = False
        self.buffer: list[tuple[Candidate, Any]] = []

    def take(self, count: int) -> list[tuple[Candidate, Any]]:
        """Up to ``count`` more candidates (fewer only when the job has no more)."""
        while len(self.buffer) < count and not self.done:
            page = max(count - len(self.buffer), DEPENDENCY_PAGE) if self.waits else count - len(self.buffer)
            rows = queries.active_tasks(self.conn, self.job.pk, self.after, self.widest, page)
            self.done = len(rows) < page
            for row in rows:
                self.after = row.pk
                affinity = wall_clock = None
                dedicated_only = False
                instances = 0
                if (self.timed or self.dedicated_manager or '"dependsOn"' in row.body or '"affinityInfo"' in row.body
                        or '"multiInstanceSettings"' in row.body):
                    body = TASKS.decode(row.body)
                    dedicated_only = body["id"] == self.dedicated_manager
                    if "dependsOn" in body and unmet_dependencies(self.conn, self.job.pk, body["dependsOn"]):
                        continue
                    if "multiInstanceSettings" in body:
                        if not self.multi:
                            continue
                        instances = multi_instance.instances(body)
                    affinity = body.get("affinityInfo", {}).get("affinityId")
                    wall_clock = commands.wall_clock_seconds(body.get("constraints", {}).get("maxWallClockTime"))
                self.buffer.append((Candidate(row.pk, self.job.pk, row.required_slots, self.mode, affinity,
                                              wall_clock, dedicated_only, instances), row))
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return taken


_NEVER = datetime.min


def _equal_priority_groups(streams: list[_JobTasks], order: str) -> list[list[_JobTasks]]:
    """The jobs (in priority order) as groups served together: each job alone for ``creationtime``;
    the jobs of one priority, least recently served first, for ``none``."""
    if order == "creationtime":
        return [[stream] for stream in streams]
    groups: list[list[_JobTasks]] = []
    for stream in streams:
        if groups and groups[-1][0].job.row["priority"] == stream.job.row["priority"]:
            groups[-1].append(stream)
        else:
            groups.append([stream])
    for group in groups:
        group.sort(key=lambda stream: (stream.job.row["last_served"] or _NEVER, stream.job.pk))
    return groups


def _interleaved(lists: list[list[Any]]) -> list[Any]:
    """One item of each list in turn: [a0, b0, a1, b1, ...]."""
    if len(lists) == 1:
        return lists[0]
    merged = []
    for index in range(max(map(len, lists), default=0)):
        merged.extend(items[index] for items in lists if index < len(items))
    return merged


@dataclass(slots=True)
class Round:
    """What a round did: tasks placed, and whether another round at once may place more
    (see :meth:`SchedulingRound.schedule_pool_in`)."""

    placed: int = 0
    again: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one round read of a pool, locked for its transaction: the plan is checked against it."""

    pool: Record
    jobs: dict[int, Record]
    tasks: dict[int, Any]   # task rows by pk
    nodes: dict[int, Any]   # node rows by pk
