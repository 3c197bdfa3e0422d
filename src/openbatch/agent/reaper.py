"""Nothing an agent started outlives it, not even a kill -9 of the agent.

Each task runs in a process group of its own (its own session), so when the agent itself is
killed outright its tasks would run on, unseen, while the server gives them to other nodes: a
task twice at once. So the agent starts a small helper first, ``python -m
openbatch.agent.reaper``, in a session of its own, and tells it over a pipe each process group it
starts (``+<pgid>``) and ends (``-<pgid>``). When the pipe closes, because the agent ended in
whatever way, the helper kills the groups still running (SIGKILL) and exits. It ignores the
terminal's and the service manager's polite signals: only the pipe ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import IO

log = logging.getLogger(__name__)


class Reaper:
    """The agent's end of the pipe (does nothing until :meth:`start`)."""

    def __init__(self) -> None:
        self._pipe: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the helper and wait until it ignores the polite signals (it says so on its stdout)."""
        self._process = subprocess.Popen([sys.executable, "-m", "openbatch.agent.reaper"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, start_new_session=True, close_fds=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline() != b"ready\n":
            log.error("the helper that ends this agent's tasks with it did not start")
            return
        self._process.stdout.close()
        self._pipe = self._process.stdin

    def watch(self, pgid: int) -> None:
        self._tell(b"+%d\n" % pgid)

    def release(self, pgid: int) -> None:
        self._tell(b"-%d\n" % pgid)

    def stop(self) -> None:
        """The agent ends normally (its runs are stopped): the helper exits too."""
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
        try:
            self._pipe.write(line)
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


def main() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_IGN)
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.buffer.flush()
    sys.stdout.close()
    for pgid in follow(sys.stdin.buffer):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main()
