"""What every use case needs: the store, the clock, and the lookups that raise 404s."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence

from ..store.engine import Connection

from .auto_storage import AutoStorage
from ..domain import clock
from ..domain.errors import not_found
from ..domain.intervals import Intervals
from ..domain.quotas import Quotas
from ..domain.spot import Spot
from ..protocol import Command
from ..store.engine import Store, after_commit
from ..store.loop_reads import LoopReads
from ..store.records import JOBS, POOLS, TASKS, Record
from ..store.task_queries import task_of_job_on_loop


Json = dict[str, Any]

#: conn.info key: (agent id, list) while a transaction's commands for that agent are its answer.
_ANSWERING = "openbatch.answering"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the records and the keyset position of the last one (None at the end)."""

    records: list[Record]
    next_after: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list request after parsing: the bound ``$filter`` tree (the store compiles it), the keyset
    position, the page size."""

    filter: Any = None
    after: tuple[str, ...] | None = None
    limit: int = 1000


class Notifier:
    """What services tell the execution layer after a commit; the default does nothing."""

    def push(self, agent_id: str, commands: list[Command]) -> None:
        """Send commands to an agent."""

    def wake(self) -> None:
        """There may be tasks to place."""

    def nodes_changed(self) -> None:
        """Nodes were added or removed: local agents may need starting or stopping."""

    def agent_gone(self, agent_id: str, retired: bool = False) -> None:
        """An agent's credential ended (its nodes left, or it was lost for good), or it was found lost:
        forget what was queued for it and that it called (it reconciles when it calls again).
        ``retired``: its last nodes left their pool (should it call again, it is told so)."""

    def take(self, agent_id: str) -> list[Command]:
        """The commands queued for an agent (sent after earlier commits), taken now."""
        return []


class Outbox:
    """How a transaction's messages leave it: by default through the :class:`Notifier` once it has
    committed (one server); several servers on one database send them through the database in the
    transaction itself (cluster/channel.py), so they reach whichever server needs them."""

    def send_in(self, conn: Connection, agent_id: str, commands: list[Command]) -> None:
        raise NotImplementedError

    def wake_in(self, conn: Connection) -> None:
        raise NotImplementedError

    def nodes_changed_in(self, conn: Connection) -> None:
        raise NotImplementedError

    def agent_gone_in(self, conn: Connection, agent_id: str, retired: bool = False) -> None:
        raise NotImplementedError

    def queued_runs(self, conn: Connection, agent_id: str) -> set[str]:
        """Runs sent to an agent that it has not taken yet."""
        raise NotImplementedError

    def take_in(self, conn: Connection, agent_id: str) -> list[Command]:
        """The agent's queued commands, taken in the caller's transaction."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class PoolRound:
    """What a scheduling round for one pool did (``ServiceContext.schedule_in``)."""

    #: The tasks it placed, as they are stored now, by pk.
    placed: dict[int, Record] = field(default_factory=dict)
    #: Whether another round at once may place more (it left slots free without reading every candidate).
    more: bool = False


def no_round(conn: Connection, account: str, pool_key: str) -> PoolRound:
    """``schedule_in`` until a scheduler installs its own: nothing placed (no round ran)."""
    return PoolRound()


@dataclass
class ServiceContext:
    store: Store
    now: Callable[[], datetime] = field(default=clock.utcnow)
    notifier: Notifier = field(default_factory=Notifier)
    #: AZ_BATCH_ACCOUNT_URL for an account (the server's public URL).
    account_url: Callable[[str], str] = field(default=lambda account: "")
    #: Every account's quotas (server settings).
    quotas: Quotas = field(default_factory=Quotas)
    #: The documented minimum intervals (a server setting may lower them) and the metrics' sample period.
    intervals: Intervals = field(default_factory=Intervals)
    #: How low-priority nodes are preempted (a server setting; by default never).
    spot: Spot = field(default_factory=Spot)
    #: A scheduling round for one pool (account, pool key) in the caller's write transaction:
    #: The scheduler installs its own (scheduler/round.py); without one, nothing is placed.
    schedule_in: Callable[[Connection, str, str], PoolRound] = field(default=no_round)
    #: A node's last task left it (in the caller's transaction): what waited for that happens (it
    #: leaves its pool, or restarts). Installed by ``Services.create`` (node_ops.py), which owns it.
    node_vacated: Callable[[Connection, Record, datetime], None] = field(default=lambda conn, node, now: None)

    #: A restart (reboot, reimage) of a node hosted by the node provider gives it a new host (a new Slurm
    #: allocation) instead of restarting it in place; set by the runtime for such providers.
    restart_means_new_host: bool = False
    #: The auto-storage account (a setting of the server), if any: see auto_storage.py.
    auto_storage: AutoStorage | None = None
    #: (account, job id) -> a task authentication token for that job; installed by the server,
    #: which holds the account keys (auth/task_tokens.py).
    issue_token: Callable[[str, str], str] | None = None
    #: Where commands and wake-ups go instead of the notifier (several servers: cluster/channel.py).
    outbox: Outbox | None = None
    #: Prefetch (domain/reservations.py): rounds reserve tasks for nodes whose slots are all taken (a server
    #: setting, on by default; reservations made before it was turned off still end as they should).
    prefetch: bool = True

    def task_token(self, account: str, job: Json, task: Json) -> str | None:
        """The token a task's authenticationTokenSettings ask for (access ``job``), else None."""
        settings = task.get("authenticationTokenSettings") or {}
        if "job" not in (settings.get("access") or ()):
            return None
        if self.issue_token is None:
            raise RuntimeError("a task asks for an authentication token and no issuer is installed")
        return self.issue_token(account, job["id"])

    def send(self, conn: Connection, agent_id: str | None, commands: list[Command]) -> None:
        """Send commands to an agent once this transaction has committed."""
        if agent_id and commands:
            if self.auto_storage is not None:
                commands = self.auto_storage.resolve(commands)
            answering = conn.info.get(_ANSWERING)
            if answering is not None and answering[0] == agent_id:
                answering[1].extend(commands)
            elif self.outbox is not None:
                self.outbox.send_in(conn, agent_id, commands)
            else:
                after_commit(conn, lambda: self.notifier.push(agent_id, commands))

    @contextmanager
    def answering(self, conn: Connection, agent_id: str) -> Iterator[list[Command]]:
        """Within this block, the commands the transaction decides for ``agent_id`` are not sent but
        collected into the list, for the caller to answer the agent's own request with once the
        transaction has committed (its report: the next runs on the slots it freed). The commands
        queued for the agent before are taken in the same transaction and put first: the answer
        keeps the order in which they were decided (a kill never overtakes its run)."""
        answer: list[Command] = []
        conn.info[_ANSWERING] = (agent_id, answer)
        try:
            yield answer
            if agent_id:   # what was queued for it before this transaction goes first, in order
                answer[:0] = self.outbox.take_in(conn, agent_id) if self.outbox else self.notifier.take(agent_id)
        finally:
            conn.info.pop(_ANSWERING, None)

    def queued_runs(self, conn: Connection, agent_id: str) -> set[str]:
        """Runs sent to an agent and not taken yet (only a database outbox can tell; none are lost)."""
        return self.outbox.queued_runs(conn, agent_id) if self.outbox is not None else set()

    @property
    def schedules(self) -> bool:
        """Whether a scheduler installed its round (then a round that placed nothing really ran)."""
        return self.schedule_in is not no_round

    def wake_after(self, conn: Connection) -> None:
        if self.outbox is not None:
            self.outbox.wake_in(conn)
        else:
            after_commit(conn, self.notifier.wake)

    def nodes_changed_after(self, conn: Connection) -> None:
        if self.outbox is not None:
            self.outbox.nodes_changed_in(conn)
        else:
            after_commit(conn, self.notifier.nodes_changed)

    def agent_gone_after(self, conn: Connection, agent_id: str, *, retired: bool = False) -> None:
        if self.outbox is not None:
            self.outbox.agent_gone_in(conn, agent_id, retired)
        else:
            after_commit(conn, lambda: self.notifier.agent_gone(agent_id, retired))


def page_of(records: list[Record], limit: int, key: Callable[[Record], Sequence[str]]) -> Page:
    """Turn ``limit + 1`` fetched records into a page and the next keyset position."""
    if len(records) > limit:
        records = records[:limit]
        return Page(records, tuple(key(records[-1])))
    return Page(records, None)


def id_key(record: Record) -> tuple[str]:
    return (record.row["id_key"],)


def require_pool(conn: Connection, account: str, pool_id: str, *, for_update: bool = False) -> Record:
    record = POOLS.get(conn, (account,), (pool_id,), for_update=for_update)
    if record is None:
        raise not_found("PoolNotFound", "pool", pool_id)
    return record


def require_job(conn: Connection, account: str, job_id: str, *, for_update: bool = False) -> Record:
    return _job_found(JOBS.get(conn, (account,), (job_id,), for_update=for_update), job_id)


def require_task(conn: Connection, job: Record, task_id: str, *, for_update: bool = False) -> Record:
    return _task_found(TASKS.get(conn, (job.pk,), (task_id,), for_update=for_update), task_id)


async def require_task_on_loop(reads: LoopReads, account: str, job_id: str, task_id: str) -> Record:
    """The job's task, as :func:`require_job` then :func:`require_task` find it, in one read on the event
    loop (PostgreSQL, store/loop_reads.py)."""
    job_found, record = await task_of_job_on_loop(reads, account, job_id, task_id)
    if not job_found:
        raise not_found("JobNotFound", "job", job_id)
    return _task_found(record, task_id)


def _job_found(record: Record | None, job_id: str) -> Record:
    if record is None:
        raise not_found("JobNotFound", "job", job_id)
    return record


def _task_found(record: Record | None, task_id: str) -> Record:
    if record is None:
        raise not_found("TaskNotFound", "task", task_id)
    return record
