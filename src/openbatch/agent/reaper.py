"""Nothing an agent started outlives it, not even a kill -9 of the agent.

Each task runs in a process group of its own (its own session), so when the agent itself is
killed outright its tasks would run on, unseen, while the server gives them to other nodes: a
task twice at once. So the agent starts a small helper first, ``python -m
openbatch.agent.reaper``, in a session of its own, and tells it over a pipe each process group it
starts (``+<pgid>``) and ends (``-<pgid>``). When the pipe closes, because the agent ended in
whatever way, the helper kills the groups still running (SIGKILL) and exits. It ignores the
terminal's and the service manager's polite signals: only the pipe ends it.

A group is told right after its process is spawned, so an agent killed in between (the task
already running, its ``+<pgid>`` not yet written) would leave it unknown. On an event loop the
lines of one loop iteration go in one write, at its end (a write per task, and the helper woken
for each, was a tenth of a busy agent's time), which widens that window a little. Every task therefore
also carries this agent's mark in its environment (:data:`MARK`, a value of its own per agent
run): at the end the helper kills the groups of every process that carries it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


#: The environment variable marking the processes of one agent run (see the module's docstring).
MARK = "OPENBATCH_AGENT_RUN"


class Reaper:
    """The agent's end of the pipe (does nothing until :meth:`start`)."""

    def __init__(self) -> None:
        self._pipe: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        #: Added to every task's environment once the helper runs (empty before: nothing to mark for).
        self.environment: dict[str, str] = {}
        #: Lines told and not yet written (on an event loop: written at the end of its iteration).
        self._pending: list[bytes] = []

    def start(self) -> None:
        """Start the helper and wait until it ignores the polite signals (it says so on its stdout)."""
        mark = uuid.uuid4().hex
        self._process = subprocess.Popen([sys.executable, "-m", "openbatch.agent.reaper", mark],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
                                         close_fds=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline() != b"ready\n":
            log.error("the helper that ends this agent's tasks with it did not start")
            return
        self._process.stdout.close()
        self._pipe = self._process.stdin
        self.environment = {MARK: mark}

    def watch(self, pgid: int) -> None:
        self._tell(b"+%d\n" % pgid)

    def release(self, pgid: int) -> None:
        self._tell(b"-%d\n" % pgid)

    def stop(self) -> None:
        """The agent ends normally (its runs are stopped): the helper exits too."""
        self._flush()
        if self._pipe is not None:
            try:
                self._pipe.close()
            except OSError:
                pass
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def _tell(self, line: bytes) -> None:
        if self._pipe is None:
            return
        self._pending.append(line)
        if len(self._pending) > 1:   # a write is already due
            return
        try:
            asyncio.get_running_loop().call_soon(self._flush)
        except RuntimeError:   # no event loop here: at once
            self._flush()

    def _flush(self) -> None:
        lines, self._pending = self._pending, []
        if self._pipe is None or not lines:
            return
        try:
            self._pipe.write(b"".join(lines))
            self._pipe.flush()
        except OSError as error:   # the helper died: runs still end with the agent, unless it is killed
            log.error("the helper that ends this agent's tasks with it is gone (%s)", error)
            self._pipe = None


#: The agent's reaper (started by ``openbatch agent``).
REAPER = Reaper()


def follow(stream: IO[bytes]) -> set[int]:
    """Read ``+pgid``/``-pgid`` lines until the stream ends; the groups still running then."""
    groups: set[int] = set()
    for line in stream:
        try:
            pgid = int(line[1:])
        except ValueError:
            continue
        if line.startswith(b"+"):
            groups.add(pgid)
        elif line.startswith(b"-"):
            groups.discard(pgid)
    return groups


def marked(mark: str, proc: Path = Path("/proc")) -> set[int]:
    """The process groups of the processes whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    groups: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                groups.add(os.getpgid(int(entry.name)))
        except OSError:   # gone meanwhile, or not ours to read
            continue
    return groups


def main() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_IGN)
    mark = sys.argv[1] if len(sys.argv) > 1 else ""
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.buffer.flush()
    sys.stdout.close()
    groups = follow(sys.stdin.buffer)
    if mark:
        groups |= marked(mark)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
