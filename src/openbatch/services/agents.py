"""Node agents: registration, credentials, nodes coming up (and their start task), agents lost."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from ..domain import clock, commands, containers, execution, nodes as node_rules
from ..domain.errors import BatchError, not_found
from ..domain.nodes import NodeState
from ..store import cluster_queries, node_queries, reservation_queries, subtask_queries
from ..store.engine import Connection
from ..store.records import JOBS, NODES, POOLS, PREP_RELEASE, TASKS, Record
from ..store.task_queries import current_runs, prep_rows_of_node, task_by_run, tasks_on_node
from . import reservations, transitions
from .calls import bounded_write
from .context import ServiceContext, require_pool
from .instances import proceed_if_coordinated
from .jobs import JobService
from .node_ops import NodeOperations, stale_preparations
from .pools import nodes_within_quota

Json = dict[str, Any]

log = logging.getLogger("openbatch.agents")


#: A task sent to an agent this long ago that the agent does not have was lost on the way.
UNDELIVERED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    agent_id: str
    account: str
    pool_key: str


def _hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


class AgentService:
    def __init__(self, ctx: ServiceContext, jobs: JobService, node_ops: NodeOperations) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.node_ops = node_ops

    # -- registration ----------------------------------------------------------------------

    def register(
        self, account: str, pool_id: str, hostname: str, *, node_ids: Sequence[str] = (), new_nodes: int = 0,
        address: str | None = None, ssh_port: int | None = None,
    ) -> tuple[str, str, list[Record]]:
        """Register an agent hosting ``node_ids`` (local nodes, for the node provider) or ``new_nodes``
        fresh nodes (an agent started on another host). Its nodes take the address it called from and,
        when an SSH server listens on its host, that as their remote login. Returns (agent id, credential,
        nodes)."""
        agent_id = f"agent-{secrets.token_hex(8)}"
        credential = secrets.token_urlsafe(32)
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            pool = require_pool(conn, account, pool_id, for_update=True)
            if pool.body["state"] != "active":
                raise BatchError("PoolBeingDeleted", "The pool is being deleted.", [("PoolId", pool_id)])
            key = pool.row["id_key"]
            node_queries.insert_agent(conn, agent_id, account, key, _hash(credential), hostname, bool(node_ids),
                                      clock.naive(now))
            hosted: list[Record] = []
            for node_id in node_ids:
                node = NODES.get(conn, (account, key), (node_id,), for_update=True)
                if node is None or node.row["agent_id"] is not None:
                    raise not_found("NodeNotFound", "node", node_id)
                hosted.append(node)
            if new_nodes:
                self._check_core_quota(conn, account, pool, new_nodes)
            for _ in range(new_nodes):
                body = node_rules.new_node_body(pool.body, node_rules.new_node_id(), now)
                hosted.append(NODES.insert(conn, (account, key), body, now,
                                           extra={"slots": int(pool.body.get("taskSlotsPerNode", 1))}))
            result = []
            for node in hosted:
                body = node_rules.with_host(node_rules.with_state(node.body, NodeState.STARTING, now), address,
                                            ssh_port)
                result.append(NODES.update(conn, node, body, now, extra={"agent_id": agent_id}))
            if new_nodes:
                self._count_pool_nodes(conn, account, pool, now)
        return agent_id, credential, result

    def _check_core_quota(self, conn: Connection, account: str, pool: Record, new_nodes: int) -> None:
        """An agent's nodes count against the account's dedicated core quota like any others."""
        quota, vm_size = self.ctx.quotas.dedicated_cores, pool.body["vmSize"]
        current = NODES.count(conn, (account, pool.row["id_key"]))
        if nodes_within_quota(self.ctx, conn, account, pool, current, new_nodes) < new_nodes:
            raise BatchError("AccountCoreQuotaReached", f"{new_nodes} more {vm_size} nodes would pass the account's "
                             f"dedicated core quota ({quota} cores).", [("CoreQuota", str(quota))])

    def _count_pool_nodes(self, conn: Connection, account: str, pool: Record, now: datetime) -> None:
        dedicated, low_priority = node_queries.count_by_kind(conn, account, pool.row["id_key"])
        POOLS.update(conn, pool, {**pool.body, "currentDedicatedNodes": dedicated,
                                  "currentLowPriorityNodes": low_priority}, now)

    def authenticate(self, agent_id: str, credential: str) -> AgentIdentity:
        with self.ctx.store.read() as conn:
            row = node_queries.agent(conn, agent_id)
        if row is None or not hmac.compare_digest(row.credential_hash, _hash(credential)):
            raise BatchError("AuthenticationFailed", "The agent credential is not valid.")
        return AgentIdentity(agent_id, row.account, row.pool_id_key)

    # -- nodes coming up -------------------------------------------------------------------

    def pool_containers(self, account: str, pool_id: str) -> tuple[list[str], list[Json]]:
        """The pool's containerImageNames and containerRegistries (its nodes pull the images when they start)."""
        with self.ctx.store.read() as conn:
            pool = POOLS.get(conn, (account,), (pool_id,))
        configuration = containers.pool_containers(pool.body if pool else None) or {}
        return list(configuration.get("containerImageNames") or ()), list(configuration.get("containerRegistries") or ())

    @bounded_write
    def node_ready(self, agent: AgentIdentity, node_id: str, failure: Json | None = None) -> None:
        """The node is up; ``failure``: it could not get ready (its pool's container images could not be
        pulled), and it is unusable, with the error, until it is rebooted or reimaged."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            node = self._own_node(conn, agent, node_id)
            if node.body["state"] not in (NodeState.STARTING.value, NodeState.REBOOTING.value,
                                          NodeState.REIMAGING.value):
                return
            if failure is not None:
                body = node_rules.with_state(node.body, NodeState.UNUSABLE, now)
                body["errors"] = [failure]
                NODES.update(conn, node, body, now)
                return
            state = node_rules.ready_state(node.body)
            body = node_rules.with_state(node.body, state, now)
            body.pop("errors", None)
            body["lastBootTime"] = clock.to_wire(now)
            start = body.get("startTask")
            extra: Json = {}
            if start:
                run_id = commands.new_run_id("s")
                body["startTaskInfo"] = {"state": "running", "startTime": clock.to_wire(now), "retryCount": 0}
                extra["start_run_id"] = run_id
                pool = require_pool(conn, agent.account, agent.pool_key)
                who = commands.Identity(agent.account, self.ctx.account_url(agent.account), pool.body["id"], node_id,
                                        pool.body)
                self.ctx.send(conn, agent.agent_id, [commands.start_task_command(run_id, who, start, 0)])
            NODES.update(conn, node, body, now, extra=extra)
            self.ctx.wake_after(conn)

    def _own_node(self, conn: Connection, agent: AgentIdentity, node_id: str) -> Record:
        node = NODES.get(conn, (agent.account, agent.pool_key), (node_id,), for_update=True)
        if node is None or node.row["agent_id"] != agent.agent_id:
            raise not_found("NodeNotFound", "node", node_id)
        return node

    # -- agents lost -----------------------------------------------------------------------

    def agent_lost(self, agent_id: str) -> bool:
        """An agent stopped calling, or its process ended: its nodes become ``unusable`` and what ran
        on them goes back to the queue (a task that ran is run again elsewhere, counted as a recovery,
        not a retry; one that waited for its job preparation task simply waits again). A local
        agent is gone for good: its nodes wait for a new one (the node provider starts it); a remote
        agent keeps its nodes, which restart if it calls again. False if the agent is unknown."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            row = node_queries.agent(conn, agent_id)
            if row is None:
                return False
            self._release_nodes(conn, agent_id, now, NodeState.UNUSABLE, lost=True)
            if row.local:
                self._drop_agent(conn, agent_id)
            else:   # every server forgets it (commands queued for it, its greeting): it reconciles
                self.ctx.agent_gone_after(conn, agent_id)   # wherever it calls next
            self.ctx.wake_after(conn)
        return True

    def local_agents_of(self, node_ids: Sequence[str]) -> list[str]:
        """The local agents hosting any of ``node_ids``."""
        with self.ctx.store.read() as conn:
            return node_queries.local_agents_of(conn, node_ids)

    def missing_nodes(self, node_ids: Sequence[str]) -> list[str]:
        """Which of ``node_ids`` no longer exist (removed from their pool, or the pool deleted)."""
        with self.ctx.store.read() as conn:
            present = node_queries.existing_node_keys(conn, node_ids)
        return [node_id for node_id in node_ids if node_id.lower() not in present]

    def set_available_until(self, node_ids: Sequence[str], until: datetime | None) -> None:
        """When these nodes' allocations end (the scheduler starts no task there that could not finish)."""
        with self.ctx.store.write() as conn:
            node_queries.set_available_until(conn, node_ids, clock.naive(until) if until else None)
            if until is not None:   # a node whose allocation ends holds no reservations (scheduler/round.py)
                for node_pk in node_queries.node_pks_of(conn, node_ids):
                    reservations.cancel_node(self.ctx, conn, node_pk)

    def existing_nodes(self, node_ids: Sequence[str]) -> list[str]:
        """Which of ``node_ids`` exist (in this database)."""
        with self.ctx.store.read() as conn:
            present = node_queries.existing_node_keys(conn, node_ids)
        return [node_id for node_id in node_ids if node_id.lower() in present]

    def seen(self, agent_ids: Sequence[str], usage: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """These agents called a server, some reporting their host's usage (each server writes what
        it saw, about once a second)."""
        if agent_ids or usage:
            with self.ctx.store.write(lock="none") as conn:   # (never behind a long transaction)
                if agent_ids:
                    cluster_queries.mark_seen(conn, agent_ids, self.ctx.now())
                if usage:
                    cluster_queries.record_usage(conn, usage)

    def silent_since(self, cutoff: datetime) -> list[tuple[str, datetime]]:
        """(agent id, its last call) of the agents that have called no server since ``cutoff``."""
        with self.ctx.store.read() as conn:
            return cluster_queries.agents_silent_since(conn, cutoff)

    def node_ids_of(self, agent_id: str) -> list[str]:
        with self.ctx.store.read() as conn:
            return node_queries.node_ids_of_agent(conn, agent_id)

    def is_local(self, agent_id: str) -> bool | None:
        """Whether the agent is one the server started (None: no such agent)."""
        with self.ctx.store.read() as conn:
            row = node_queries.agent(conn, agent_id)
        return None if row is None else bool(row.local)

    def _drop_agent(self, conn: Connection, agent_id: str) -> None:
        """The agent's credential ends; its nodes (if any are left) wait for a new agent."""
        node_queries.delete_agent(conn, agent_id)
        reservations.forget_agent(conn, agent_id)
        self.ctx.agent_gone_after(conn, agent_id)
        self.ctx.nodes_changed_after(conn)

    def _release_nodes(self, conn: Connection, agent_id: str, now: datetime, state: NodeState, *,
                       lost: bool) -> None:
        """The agent's nodes lose what ran on them and take ``state``: tasks back to the queue (``lost``:
        counted as a recovery), preparation/release runs failed, preparations to run again; what it held
        reserved can no longer start (a remote agent fenced itself first)."""
        reservations.forget_agent(conn, agent_id)
        for node in node_queries.nodes_of_agent(conn, agent_id):
            self._requeue_node_tasks(conn, node, set(), now, lost=lost)
            self._fail_running_prep_release(conn, node, now)
            stale_preparations(conn, node, reimage=False)
            # a deallocated or preempted node is down anyway: it stays so (Start or its recovery brings it back);
            # one being deallocated is now (its tasks went back to the queue above)
            if node.body["state"] == NodeState.DEALLOCATING.value:
                body = node_rules.with_state(node.body, NodeState.DEALLOCATED, now)
            elif node.body["state"] in _STAYS_DOWN:
                body = node.body
            else:
                body = node_rules.with_state(node.body, state, now)
            NODES.update(conn, node, body, now, extra={"used_slots": 0, "running_tasks": 0, "start_run_id": None,
                                                       "pending_restart": None})

    def _requeue_node_tasks(self, conn: Connection, node: Record, keep: set[str], now: datetime, *,
                            lost: bool, only: set[int] | None = None) -> int:
        """Send the node's tasks whose run is not in ``keep`` back to the queue; their jobs are
        re-checked (a job disabling with ``wait`` may now be disabled). A task that waited for the
        job preparation task never started: it just waits again. One that ran is requeued
        (requeueCount + 1, never retryCount); with ``lost`` (its node was lost) that counts as a
        recovery, and a task lost too often fails (:func:`execution.recovered`)."""
        jobs: set[int] = set()
        for task in tasks_on_node(conn, node.pk):
            run_id = _run_on(conn, task, node.pk)
            if run_id and run_id in keep or only is not None and task.pk not in only:
                continue
            job = JOBS.get_by_pk(conn, task.row["job_pk"], for_update=True)
            extra: Json = {"node_pk": None, "run_id": None}
            if task.body["state"] == "preparing":
                body = execution.unassigned(task.body, now)
            elif lost:
                recoveries = int(task.row.get("recoveries") or 0) + 1
                body = execution.recovered(task.body, now, recoveries)
                extra["recoveries"] = recoveries
                if body["state"] == "completed":
                    extra["node_pk"] = node.pk
                    log.warning("task %s of job %s failed: its node %s was lost %d times", task.body["id"],
                                job.body["id"], node.body["id"], recoveries)
            else:
                body = execution.requeued(task.body, now)
            jobs.add(job.pk)
            if "multiInstanceSettings" in task.body:   # all its instances stop, wherever they run
                transitions.stop_on_node(self.ctx, conn, job, task, body, now)
                if "recoveries" in extra:
                    TASKS.set_columns(conn, task.pk, recoveries=extra["recoveries"])
                continue
            transitions.apply(conn, job, task, body, now)
            TASKS.set_columns(conn, task.pk, **extra)
            transitions.vacate_node(conn, node.pk, task.body["requiredSlots"], now, ran=False, succeeded=False)
        for job_pk in jobs:
            job = JOBS.get_by_pk(conn, job_pk, for_update=True)
            if job is not None:
                self.jobs.after_tasks_changed(conn, job)
                self.jobs.settle_in(conn, job)
        return len(jobs)

    def requeue_undelivered(self, agent: AgentIdentity, active_runs: set[str]) -> int:
        """Tasks sent to the agent over :data:`UNDELIVERED_AFTER` ago that it does not have, and that
        are not queued for it either: their command was lost on the way (an answer that never reached
        it). They go back to the queue instead of showing ``running`` for ever. How many."""
        now = self.ctx.now()
        before = clock.to_wire(now - UNDELIVERED_AFTER)

        def overdue(conn: Connection, have: set[str]) -> set[int]:
            return {task.pk for node in node_queries.nodes_of_agent(conn, agent.agent_id)
                    for task in tasks_on_node(conn, node.pk)
                    if task.body["state"] == "running" and _run_on(conn, task, node.pk) not in have
                    and task.body.get("executionInfo", {}).get("startTime", "") < before}

        with self.ctx.store.read() as conn:
            if not overdue(conn, active_runs) and not reservation_queries.of_agent_before(
                    conn, agent.agent_id, clock.naive(now - UNDELIVERED_AFTER), lock=False):
                return 0
        with self.ctx.store.write() as conn:
            have = active_runs | self.ctx.queued_runs(conn, agent.agent_id)
            reservations.forget_undelivered(self.ctx, conn, agent.agent_id, have, now - UNDELIVERED_AFTER)
            lost = overdue(conn, have)
            for node in node_queries.nodes_of_agent(conn, agent.agent_id):
                self._requeue_node_tasks(conn, node, have, now, lost=False, only=lost)
            if lost:
                log.warning("agent %s never got %d task(s) sent to it over %d s ago: they go back to the queue",
                            agent.agent_id, len(lost), UNDELIVERED_AFTER.total_seconds())
                self.ctx.wake_after(conn)
        return len(lost)

    def restart_recovery(self) -> list[str]:
        """At server start: local nodes come back as after a reboot (their agents stopped with the
        old server, and what ran there counts as lost); returns the remote agents, which must call
        again to keep their nodes."""
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            local = node_queries.agent_ids(conn, local=True)
            remote = node_queries.agent_ids(conn, local=False)
            for agent_id in local:
                self._release_nodes(conn, agent_id, now, NodeState.CREATING, lost=True)
                self._drop_agent(conn, agent_id)
            self.ctx.nodes_changed_after(conn)
        return remote

    def reconcile(self, agent: AgentIdentity, active_runs: set[str]) -> None:
        """An agent calls for the first time since this server started, or since it was found lost.

        Its nodes that were made ``unusable`` meanwhile restart (their work went elsewhere); on
        the others, tasks the server believes run there but the agent does not have (their
        command was lost) go back to the queue. Runs the agent has that are no longer current
        (requeued, terminated or moved elsewhere while it was away) are killed.
        """
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            # (runs still on their way to it are not lost: an agent may call another server first)
            have = active_runs | self.ctx.queued_runs(conn, agent.agent_id)
            reservations.forget_undelivered(self.ctx, conn, agent.agent_id, have, now)
            for node in node_queries.nodes_of_agent(conn, agent.agent_id):
                if node.body["state"] == NodeState.UNUSABLE.value:
                    self.node_ops.restart_in(conn, node, False, now)
                elif self._requeue_node_tasks(conn, node, have, now, lost=False):
                    self.ctx.wake_after(conn)
            stale = active_runs - (current_runs(conn, active_runs) if active_runs else set())
            self.ctx.send(conn, agent.agent_id, [commands.kill_command(run_id) for run_id in sorted(stale)])
            for run_id in sorted(active_runs - stale):   # a primary's proceed may have been lost on its way
                if run_id.startswith("t"):
                    task = task_by_run(conn, run_id)
                    if task is not None and "multiInstanceSettings" in task.body:
                        proceed_if_coordinated(self.ctx, conn, task)

    def _fail_running_prep_release(self, conn: Connection, node: Record, now: datetime) -> None:
        failure = {"category": "servererror", "code": "NodeUnusable",
                   "message": "The compute node became unusable while the task ran."}
        for record in prep_rows_of_node(conn, node.pk):
            body = dict(record.body)
            for key in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"):
                info = body.get(key)
                if info and info.get("state") == "running":
                    body[key] = {**info, "state": "completed", "endTime": clock.to_wire(now), "result": "failure",
                                 "failureInfo": failure}
            if body != record.body:
                PREP_RELEASE.update(conn, record, body, now, extra={"prep_run_id": None, "release_run_id": None})
                job = JOBS.get_by_pk(conn, record.row["job_pk"], for_update=True)
                if job is not None:
                    self.jobs.settle_in(conn, job)


def _run_on(conn: Connection, task: Record, node_pk: int) -> str | None:
    """The task's run on the node: its own, or (a multi-instance task) that of its subtask there."""
    if task.row["node_pk"] == node_pk or "multiInstanceSettings" not in task.body:
        return task.row["run_id"]
    return subtask_queries.run_on_node(conn, task.pk, node_pk)


#: Node states in which a local node waits for an agent to host it.
_WAITING_FOR_AGENT = (NodeState.CREATING.value, NodeState.UNUSABLE.value, NodeState.REBOOTING.value,
                      NodeState.REIMAGING.value, NodeState.STARTING.value)
#: Node states a lost agent leaves as they are (the node runs nothing and comes back by itself).
_STAYS_DOWN = (NodeState.DEALLOCATED.value, NodeState.PREEMPTED.value)


def unhosted_local_nodes(ctx: ServiceContext) -> list[tuple[str, str, str, str]]:
    """(account, pool id, node id, state) of nodes that wait for a local agent to host them: new
    ones, and those whose agent was lost (``unusable``, or rebooted/reimaged since)."""
    with ctx.store.read() as conn:
        return node_queries.unhosted_nodes(conn, _WAITING_FOR_AGENT)


def node_agent(ctx: ServiceContext, node_id: str) -> tuple[str | None, bool]:
    """(agent id, whether it is a local agent) of the node with ``node_id`` (node ids are unique)."""
    with ctx.store.read() as conn:
        found = node_queries.node_agent(conn, node_id)
    if found is None:
        return None, True
    agent_id, local = found
    return agent_id, bool(local) if agent_id else True
