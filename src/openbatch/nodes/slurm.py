"""The ``slurm`` node provider (nodes/provider.py): every compute node is one Slurm allocation.

The pilot pattern (dask-jobqueue, HyperQueue's autoalloc, Parsl): for each node that waits for
an agent, the provider submits a batch job with ``sbatch`` whose only step is ``openbatch agent``
for that node; the agent registers with the server's join token, its node comes up through
``starting`` (and its start task) to ``idle``, and runs tasks like any node. A node leaving its
pool makes its agent exit, which ends the allocation.

- **Where**: the cluster's default partition, ``--slurm-partition``, or per pool the metadata
  item ``openbatch.slurm.partition``; more ``sbatch`` options come from ``--slurm-sbatch-options``.
- **Queue cap**: at most :attr:`SlurmSettings.max_queued` of this server's allocations wait in
  the queue at once; the other nodes wait in ``creating`` for their turn.
- **Failures**: an ``sbatch`` that fails puts its message in the pool's ``resizeErrors``
  (``AllocationFailed``) and is retried with a growing delay (up to 60 s).
- **Loss**: an allocation that ends while its node still belongs to its pool (cancelled, failed,
  out of time, its host lost) is found by polling ``squeue`` every :data:`POLL_SECONDS` and by
  the agent's silence (``--node-lost-after``); either way its agent is reported lost: the node
  turns ``unusable``, its tasks go back to the queue (``requeueCount``, as Azure does on node
  loss), and a new allocation brings it back. Reboot and reimage are a fresh allocation.
- **Time limits**: an allocation's end (``--time`` among the sbatch options, or the partition's)
  is told to the scheduler, which starts there only tasks whose maxWallClockTime fits in the time
  left, and tasks without one only while more than a minute is left: the node drains, and when
  its allocation ends a new one replaces it (what still ran is requeued, as on any node loss).
- **Stop**: when the server stops, its allocations are cancelled (``scancel``); at the next
  start, allocations of this database's nodes left from before are cancelled first.

Allocations are named ``openbatch-<node id>`` (node ids are unique), so ``squeue --name``
finds them again. The nodes' directories live under ``--slurm-node-root`` on the compute host
(this server's data directory by default: on a real cluster, a directory every host can write).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import anyio.to_thread

from ..services import Services
from ..services.agents import unhosted_local_nodes

log = logging.getLogger("openbatch.nodes.slurm")

PARTITION_METADATA = "openbatch.slurm.partition"
JOB_PREFIX = "openbatch-"
POLL_SECONDS = 2.0
MAX_RETRY_DELAY = 60.0
COMMAND_TIMEOUT = 30.0


@dataclass
class SlurmSettings:
    partition: str | None = None
    sbatch_options: list[str] = field(default_factory=list)
    max_queued: int = 16
    node_root: Path | None = None   # default: <data-dir>/slurm-nodes


class SlurmError(RuntimeError):
    pass


async def _slurm(*args: str) -> str:
    """Run a Slurm command; its stdout, or SlurmError with its stderr."""
    try:
        process = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
    except OSError as error:
        raise SlurmError(f"{args[0]}: {error.strerror or error}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        raise SlurmError(f"{args[0]} did not answer within {COMMAND_TIMEOUT:.0f} s") from None
    if process.returncode != 0:
        raise SlurmError((err or out).decode(errors="replace").strip() or f"{args[0]} exited {process.returncode}")
    return out.decode(errors="replace")


_UNSET = "unset"


@dataclass
class _Allocation:
    job_id: str
    account: str
    pool_id: str
    submitted: float
    state: str = "PENDING"
    end: datetime | None | str = _UNSET   # when its time limit ends it (None: never; told to the server)


def _end_time(text: str) -> datetime | None:
    """squeue's %e (the controller's local time), None when the allocation has no end."""
    try:
        return datetime.fromisoformat(text.strip()).astimezone(timezone.utc)
    except ValueError:
        return None   # N/A, NONE, Unknown, UNLIMITED


class SlurmNodes:
    def __init__(self, services: Services, data_dir: Path, server_url: Callable[[], str], join_token: str,
                 settings: SlurmSettings | None = None) -> None:
        self.services = services
        self.data_dir = data_dir
        self.server_url = server_url
        self.join_token = join_token
        self.settings = settings or SlurmSettings()
        self.root = self.settings.node_root or data_dir / "slurm-nodes"
        #: node id -> its allocation (submitted by this server)
        self.allocations: dict[str, _Allocation] = {}
        #: node id -> (failures in a row, monotonic time before which it is not submitted again)
        self._backoff: dict[str, tuple[int, float]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._started = False
        #: Called (on the event loop) with the ids of agents that are gone for good.
        self.on_agents_gone: Callable[[list[str]], None] = lambda agent_ids: None

    # -- NodeProvider ------------------------------------------------------------------------

    def node_root(self, node_id: str) -> Path | None:
        return None   # the node's disk is on its Slurm host: its files go through its agent

    def nodes_changed(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="openbatch-slurm")

    def hung(self, node_ids: list[str]) -> bool:
        """Cancel the allocations of a silent agent; the next poll reports it lost."""
        jobs = [self.allocations[n].job_id for n in node_ids if n in self.allocations]
        if not jobs:
            return False
        log.warning("the agent of node(s) %s stopped calling: cancelling Slurm job(s) %s", node_ids, jobs)
        asyncio.get_running_loop().create_task(self._cancel(jobs))
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        jobs = [a.job_id for a in self.allocations.values()]
        if jobs:
            await self._cancel(jobs)
        self.allocations.clear()

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                if not self._started:
                    await self._cancel_left_from_before()
                    self._started = True
                await self._poll()
                await self._submit_waiting()
            except Exception:  # noqa: BLE001 - keep provisioning
                log.exception("Slurm provisioning failed; retrying")

    async def _queue(self) -> dict[str, tuple[str, str, str]]:
        """This cluster's openbatch allocations: job name -> (job id, state, end time)."""
        out = await _slurm("squeue", "--noheader", "--format=%i|%j|%T|%e", "--states=all")
        jobs = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 4 and parts[1].startswith(JOB_PREFIX):
                jobs[parts[1]] = (parts[0], parts[2], parts[3])
        return jobs

    async def _cancel_left_from_before(self) -> None:
        """Allocations of this database's nodes from an earlier server: their agents cannot rejoin (new
        join token) and their nodes come back as after a reboot, so they go."""
        queue = await self._queue()
        ours = await anyio.to_thread.run_sync(self.services.agents.existing_nodes,
                                              [name[len(JOB_PREFIX):] for name in queue])
        stale = [queue[JOB_PREFIX + node_id][0] for node_id in ours]
        if stale:
            log.info("cancelling %d Slurm allocation(s) left by an earlier server", len(stale))
            await self._cancel(stale)

    async def _poll(self) -> None:
        """Allocations that ended: their agents are lost (unless their nodes left their pools)."""
        if not self.allocations:
            return
        queue = await self._queue()
        ended = []
        for node_id, allocation in list(self.allocations.items()):
            found = queue.get(JOB_PREFIX + node_id)
            if found is not None and found[0] == allocation.job_id and found[1] in ("PENDING", "CONFIGURING",
                                                                                     "RUNNING", "COMPLETING"):
                allocation.state = found[1]
                if found[1] == "RUNNING":
                    await self._note_end(node_id, allocation, _end_time(found[2]))
                continue
            ended.append(node_id)
            del self.allocations[node_id]
        if not ended:
            return
        agents = await anyio.to_thread.run_sync(self.services.agents.local_agents_of, ended)
        for agent_id in agents:
            log.warning("the Slurm allocation of agent %s ended: its nodes are unusable until a new allocation "
                        "brings them back", agent_id)
            await anyio.to_thread.run_sync(self.services.agents.agent_lost, agent_id)
        if agents:
            self.on_agents_gone(agents)
        self._note_failures(ended)
        self._wake.set()

    async def _note_end(self, node_id: str, allocation: _Allocation, end: datetime | None) -> None:
        """Tell the scheduler when the allocation ends: it starts no task there that could not finish."""
        if allocation.end != end:
            allocation.end = end
            await anyio.to_thread.run_sync(self.services.agents.set_available_until, [node_id], end)

    def _note_failures(self, node_ids: list[str]) -> None:
        for node_id in node_ids:
            failures = self._backoff.get(node_id, (0, 0.0))[0] + 1
            delay = min(MAX_RETRY_DELAY, 2.0 ** (failures - 1))
            self._backoff[node_id] = (failures, time.monotonic() + delay)

    async def _submit_waiting(self) -> None:
        waiting = await anyio.to_thread.run_sync(unhosted_local_nodes, self.services.ctx)
        queued = sum(1 for a in self.allocations.values() if a.state == "PENDING")
        now = time.monotonic()
        for account, pool_id, node_id, state in waiting:
            if node_id in self.allocations:
                continue
            if queued >= self.settings.max_queued:
                break
            if state not in ("rebooting", "reimaging") and self._backoff.get(node_id, (0, 0.0))[1] > now:
                continue
            try:
                job_id = await self._submit(account, pool_id, node_id, state == "reimaging")
            except SlurmError as error:
                log.warning("sbatch for node %s of pool %s failed: %s", node_id, pool_id, error)
                self._note_failures([node_id])
                await anyio.to_thread.run_sync(self.services.pools.allocation_failed, account, pool_id,
                                               f"sbatch failed: {error}"[:1000])
                continue
            self.allocations[node_id] = _Allocation(job_id, account, pool_id, time.monotonic())
            self._backoff.pop(node_id, None) if state in ("rebooting", "reimaging") else None
            queued += 1

    async def _submit(self, account: str, pool_id: str, node_id: str, wipe: bool) -> str:
        root = self.root / node_id
        logs = self.data_dir / "agent-logs" / pool_id
        await anyio.to_thread.run_sync(lambda: logs.mkdir(parents=True, exist_ok=True))
        agent = [sys.executable, "-m", "openbatch", "agent", "--server", self.server_url(), "--account", account,
                 "--pool", pool_id, "--node", node_id, "--root", str(self.root), "--log-dir", str(logs)]
        script = ["#!/bin/sh", f"export OPENBATCH_JOIN_TOKEN={shlex.quote(self.join_token)}"]
        if wipe:   # a reimage starts from an empty disk
            script.append(f"rm -rf {shlex.quote(str(root))}")
        script.append("exec " + " ".join(shlex.quote(part) for part in agent))
        partition = await anyio.to_thread.run_sync(self.services.pools.metadata_value, account, pool_id,
                                                   PARTITION_METADATA) or self.settings.partition
        args = ["sbatch", "--parsable", f"--job-name={JOB_PREFIX}{node_id}", "--nodes=1", "--ntasks=1",
                f"--output={logs / f'slurm-{node_id}-%j.out'}", "--export=ALL"]
        if partition:
            args.append(f"--partition={partition}")
        args += self.settings.sbatch_options
        path = self.data_dir / "slurm-scripts" / f"{node_id}.sh"
        await anyio.to_thread.run_sync(_write_script, path, "\n".join(script) + "\n")
        out = await _slurm(*args, str(path))
        job_id = out.strip().split(";")[0]
        log.info("node %s of pool %s: Slurm job %s submitted", node_id, pool_id, job_id)
        return job_id

    async def _cancel(self, job_ids: list[str]) -> None:
        try:
            await _slurm("scancel", *job_ids)
        except SlurmError as error:
            log.warning("scancel %s failed: %s", " ".join(job_ids), error)


def _write_script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o700)   # it holds the join token
