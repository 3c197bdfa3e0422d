"""The ``local`` node provider (nodes/provider.py): ``openbatch agent`` processes on this host.

When nodes are created for a pool (Pool Add / Resize), the provider starts one agent
process per group of up to ``nodes_per_agent`` new nodes; each node gets its own root
directory under ``<data-dir>/nodes/<node id>``. Agents exit by themselves when their
last node is removed; the provider stops the rest when the server stops.

An agent that dies (killed, crashed) cannot stop the task processes it started: each
runs in its own session, so it outlives the agent. As soon as an agent process exits
without being asked to, the provider kills every process still running for one of
its nodes (found by the ``AZ_BATCH_NODE_ROOT_DIR`` in its environment), then reports the
agent lost: its nodes turn ``unusable``, what ran there goes back to the queue (never
twice at once: its processes are gone first), and a new agent is started for the
nodes, which come back through ``starting`` (and their start task) to ``idle``. An agent
that hangs (alive but silent for ``node_lost_after`` seconds) is killed, then handled
the same way. Agents that keep dying are restarted with a growing delay (up to
:data:`MAX_RESTART_DELAY` seconds). On a real node, the machine is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import anyio.to_thread

from ..services import Services
from ..services.agents import unhosted_local_nodes

log = logging.getLogger("openbatch.nodes.local")

#: The longest wait before an agent that keeps dying is started again (seconds).
MAX_RESTART_DELAY = 30.0


class LocalNodes:
    def __init__(self, services: Services, data_dir: Path, server_url: Callable[[], str], join_token: str,
                 nodes_per_agent: int = 8) -> None:
        self.services = services
        self.data_dir = data_dir
        self.server_url = server_url
        self.join_token = join_token
        self.nodes_per_agent = max(1, nodes_per_agent)
        self._processes: list[asyncio.subprocess.Process] = []
        self._spawned: dict[str, asyncio.subprocess.Process] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._watchers: set[asyncio.Task] = set()
        self._stopping = False
        #: node id -> (failures in a row, monotonic time before which it is not restarted)
        self._backoff: dict[str, tuple[int, float]] = {}
        #: Called (on the event loop) with the ids of agents that are gone for good.
        self.on_agents_gone: Callable[[list[str]], None] = lambda agent_ids: None

    def node_root(self, node_id: str) -> Path:
        """Each local node's disk: ``<data-dir>/nodes/<node id>``."""
        return self.data_dir / "nodes" / node_id

    def pid_of(self, node_id: str) -> int | None:
        """The process id of the local agent hosting ``node_id`` (None if it is not running)."""
        process = self._spawned.get(node_id)
        return process.pid if process is not None and process.returncode is None else None

    def nodes_changed(self) -> None:
        """Thread-safe: nodes were created or removed."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        """Begin (or, for a server that leads again, resume) hosting."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="openbatch-supervisor")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            self._processes = [p for p in self._processes if p.returncode is None]
            try:
                await self._reconcile()
            except Exception:  # noqa: BLE001 - keep supervising
                log.exception("starting local agents failed")

    async def _reconcile(self) -> None:
        waiting = await anyio.to_thread.run_sync(unhosted_local_nodes, self.services.ctx)
        groups: dict[tuple[str, str], list[str]] = {}
        now = time.monotonic()
        for account, pool_id, node_id, state in waiting:
            if self.pid_of(node_id) is not None:
                continue
            if state not in ("rebooting", "reimaging") and self._backoff.get(node_id, (0, 0.0))[1] > now:
                continue   # its agents keep dying: wait (a reboot or reimage asked for now goes ahead)
            if state == "reimaging":  # a reimage starts from an empty disk
                await anyio.to_thread.run_sync(shutil.rmtree, self.node_root(node_id), True)
            groups.setdefault((account, pool_id), []).append(node_id)
        if groups:   # whatever an agent of an earlier server left running on these nodes dies first
            roots = {os.path.abspath(self.node_root(n)) for ids in groups.values() for n in ids}
            killed = await anyio.to_thread.run_sync(kill_left_behind, roots)
            if killed:
                log.warning("killed %d process(es) left running on nodes about to get a new agent", killed)
        for (account, pool_id), node_ids in groups.items():
            for start in range(0, len(node_ids), self.nodes_per_agent):
                await self._spawn(account, pool_id, node_ids[start:start + self.nodes_per_agent])

    async def _spawn(self, account: str, pool_id: str, node_ids: list[str]) -> None:
        args = [sys.executable, "-m", "openbatch", "agent", "--server", self.server_url(), "--account", account,
                "--pool", pool_id, "--log-dir", str(self.data_dir / "agent-logs" / pool_id)]
        for node_id in node_ids:
            args += ["--node", node_id]
        env = {**os.environ, "OPENBATCH_JOIN_TOKEN": self.join_token}
        src = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        process = await asyncio.create_subprocess_exec(*args, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                       start_new_session=True)
        self._processes.append(process)
        self._spawned.update({node_id: process for node_id in node_ids})
        log.info("started agent pid %s for %d node(s) of pool %s", process.pid, len(node_ids), pool_id)
        self._watchers.add(asyncio.create_task(self._watch(process, node_ids)))

    async def _watch(self, process: asyncio.subprocess.Process, node_ids: list[str]) -> None:
        """When the agent exits, nothing it started for its nodes may keep running; if it was not
        asked to stop, its nodes are lost and get a new agent."""
        started = time.monotonic()
        try:
            code = await process.wait()
            roots = {os.path.abspath(self.node_root(node_id)) for node_id in node_ids}
            killed = await anyio.to_thread.run_sync(kill_left_behind, roots)
            if killed:
                log.warning("agent pid %s exited; killed %d process(es) it left running", process.pid, killed)
            if self._stopping:
                return
            for node_id in await anyio.to_thread.run_sync(self.services.agents.missing_nodes, node_ids):
                # removed from its pool (its agent was retired before it could clean up): its disk goes
                await anyio.to_thread.run_sync(shutil.rmtree, self.node_root(node_id), True)
            agents = await anyio.to_thread.run_sync(self.services.agents.local_agents_of, node_ids)
            for agent_id in agents:
                log.warning("agent %s (pid %s) exited with code %s: its nodes are unusable until a new agent "
                            "brings them back", agent_id, process.pid, code)
                await anyio.to_thread.run_sync(self.services.agents.agent_lost, agent_id)
            if agents:
                self.on_agents_gone(agents)
            if agents or code != 0:
                self._note_exit(node_ids, time.monotonic() - started)
            self._wake.set()
        except Exception:  # noqa: BLE001 - a failed recovery is retried by the next reconcile
            log.exception("recovering the nodes of agent pid %s failed", process.pid)
        finally:
            self._watchers.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _note_exit(self, node_ids: list[str], lived: float) -> None:
        """An agent that lived less than a minute delays its nodes' next agent (1, 2, 4 ... seconds)."""
        for node_id in node_ids:
            failures = self._backoff.get(node_id, (0, 0.0))[0] + 1 if lived < 60 else 0
            delay = min(MAX_RESTART_DELAY, 2.0 ** (failures - 1)) if failures else 0.0
            self._backoff[node_id] = (failures, time.monotonic() + delay)
            if failures > 1:
                log.warning("node %s: its agent died %d times in a row; next start in %.0f s", node_id, failures,
                            delay)

    def hung(self, node_ids: list[str]) -> bool:
        """SIGKILL the local agent process hosting ``node_ids`` (it hangs): its watcher recovers the
        nodes. False if no such process runs."""
        for node_id in node_ids:
            process = self._spawned.get(node_id)
            if process is not None and process.returncode is None:
                log.warning("agent pid %s stopped calling; killing it", process.pid)
                process.kill()
                return True
        return False

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        for process in self._processes:
            if process.returncode is None:
                try:
                    process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self._processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
        self._processes.clear()
        if self._watchers:
            await asyncio.wait(list(self._watchers), timeout=5)


def kill_left_behind(roots: set[str]) -> int:
    """SIGKILL the process group of every process whose AZ_BATCH_NODE_ROOT_DIR is one of ``roots``
    (Linux: read from /proc; elsewhere nothing is found). Returns how many groups were killed."""
    markers = {f"AZ_BATCH_NODE_ROOT_DIR={root}".encode() for root in roots}
    groups: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                environ = file.read().split(b"\0")
            if not markers.isdisjoint(environ):
                groups.add(os.getpgid(int(entry)))
        except (OSError, ProcessLookupError):  # gone meanwhile, or not ours to read
            continue
    own = os.getpgid(0)
    for group in groups - {own}:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(groups - {own})
