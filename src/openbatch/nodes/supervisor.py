"""Local compute nodes: the server starts ``openbatch agent`` processes on this host for them.

When nodes are created for a pool (Pool Add / Resize), the supervisor starts one agent
process per group of up to ``nodes_per_agent`` new nodes; each node gets its own root
directory under ``<data-dir>/nodes/<node id>``. Agents exit by themselves when their
last node is removed; the supervisor stops the rest when the server stops.

An agent that dies (killed, crashed) cannot stop the task processes it started: each
runs in its own session, so it outlives the agent. The server makes the agent's nodes
``unusable`` and requeues their tasks after ``node_lost_after`` seconds; so that a
requeued task never runs twice at once, the supervisor kills, as soon as an agent
process exits, every process still running for one of its nodes (found by the
``AZ_BATCH_NODE_ROOT_DIR`` in its environment). On a real node, the machine is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable

import anyio.to_thread

from ..services import Services
from ..services.agents import unhosted_local_nodes

log = logging.getLogger("openbatch.supervisor")


class LocalSupervisor:
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

    def node_root(self, node_id: str) -> Path:
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
        self._loop = asyncio.get_running_loop()
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
        for account, pool_id, node_id in waiting:
            if node_id not in self._spawned:
                groups.setdefault((account, pool_id), []).append(node_id)
        for (account, pool_id), node_ids in groups.items():
            for start in range(0, len(node_ids), self.nodes_per_agent):
                await self._spawn(account, pool_id, node_ids[start:start + self.nodes_per_agent])

    async def _spawn(self, account: str, pool_id: str, node_ids: list[str]) -> None:
        args = [sys.executable, "-m", "openbatch", "agent", "--server", self.server_url(), "--account", account,
                "--pool", pool_id]
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
        """When the agent exits, nothing it started for its nodes may keep running."""
        try:
            await process.wait()
            roots = {os.path.abspath(self.node_root(node_id)) for node_id in node_ids}
            killed = await anyio.to_thread.run_sync(kill_left_behind, roots)
            if killed:
                log.warning("agent pid %s exited; killed %d process(es) it left running", process.pid, killed)
        finally:
            self._watchers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def stop(self) -> None:
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
