"""Processes of runs: start-and-wait primitives shared by the runner and the instances of multi-instance
tasks (instances.py). See runner.py for how a run's process lives and dies."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from datetime import datetime, timezone
from typing import Any, Sequence

from .accounts import Credentials
from .failures import TaskFailure
from .spec import RunResult

log = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when a task's process group is terminated.
KILL_GRACE_SECONDS = 5.0

_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def failure_info(code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return TaskFailure(code, message, details).failure()


def not_started(begin: datetime, failure: dict[str, Any], *, pre_processing: bool) -> RunResult:
    return RunResult(start_time=begin, end_time=utcnow(), exit_code=None, failure=failure, result="failure",
                     pre_processing_error=pre_processing)


def wall_clock_expired() -> dict[str, Any]:
    return failure_info("MaxWallClockTimeExpiry", "The task exceeded the maximum wall clock time")


class Child:
    """A started process group and the wait for its leader's exit."""

    __slots__ = ("pid", "returncode", "_event", "_loop", "_pidfd")

    def __init__(self, pid: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._event = asyncio.Event()
        self._loop = loop
        try:
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (non-Linux, old kernel): one waiter thread
            self._pidfd = -1
            waiter = threading.Thread(target=self._wait_in_thread, name=f"wait-{pid}", daemon=True)
            waiter.start()
        else:
            loop.add_reader(self._pidfd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: the status is lost
            pid, code = self.pid, 255
        else:
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self._exited(code)

    def _wait_in_thread(self) -> None:
        code = reap(self.pid)
        try:
            self._loop.call_soon_threadsafe(self._exited, code)
        except RuntimeError:  # the loop is closed; the process is reaped anyway
            pass

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._event.set()

    async def wait(self) -> int:
        if self.returncode is None:
            await self._event.wait()
        assert self.returncode is not None
        return self.returncode

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):  # the whole group is gone already
            pass


def reap(pid: int) -> int:
    """Wait for ``pid`` and return its exit code (negative: killed by that signal)."""
    try:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:  # reaped by someone else: the status is lost
        return 255


async def terminate(child: Child) -> int:
    """SIGTERM the process group, SIGKILL it after the grace period; the leader's exit status."""
    child.signal_group(signal.SIGTERM)
    try:
        async with asyncio.timeout(KILL_GRACE_SECONDS):
            await child.wait()
    except TimeoutError:
        log.info("process group %d outlived SIGTERM by %.1f s: SIGKILL", child.pid, KILL_GRACE_SECONDS)
    finally:
        child.signal_group(signal.SIGKILL)  # also whatever of the group outlived its leader
    return await child.wait()


def give_to(user: Credentials, directory: str) -> None:
    """``directory`` (the working directory) and what the agent put in it become the task account's: the
    directory itself last, so no process of the account can change it while root walks it (links are not
    followed)."""
    for _parent, directories, files, parent_fd in os.fwalk(directory, follow_symlinks=False):
        for name in (*directories, *files):
            os.chown(name, user.uid, user.gid, dir_fd=parent_fd, follow_symlinks=False)
    os.lchown(directory, user.uid, user.gid)


def open_outputs(task_dir: str, append: bool = False) -> tuple[int, int]:
    """``stdout.txt`` and ``stderr.txt`` of the task directory, truncated (or appended to), as
    inheritable-at-exec fds."""
    flags = _OUTPUT_FLAGS ^ os.O_TRUNC | os.O_APPEND if append else _OUTPUT_FLAGS
    out = os.open(os.path.join(task_dir, "stdout.txt"), flags, 0o664)
    try:
        return out, os.open(os.path.join(task_dir, "stderr.txt"), flags, 0o664)
    except BaseException:
        os.close(out)
        raise
