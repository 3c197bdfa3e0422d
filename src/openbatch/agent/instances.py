"""One instance of a multi-instance task on this node (domain/multi_instance.py has the whole picture).

Before the task's own command (the primary) or instead of it (a subtask): the common resource
files go into the task's shared directory (``AZ_BATCH_TASK_SHARED_DIR``), the coordination command
runs to its end (stdout.txt/stderr.txt of the instance's directory), and the agent reports it
(:class:`InstanceLink`). A subtask then holds its node until the server ends it; the primary waits
for the server's word that every instance coordinated, then runs the application command. Whatever
the coordination command left running (an MPI daemon, say) is killed when the instance ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..protocol import RunMultiInstance
from .accounts import Credentials
from .commandline import CommandLineError, split_command_line
from .processes import Child, failure_info, give_to, utcnow, open_outputs, terminate, wall_clock_expired
from .reaper import REAPER
from .spawn import spawn
from .spec import RunResult, RunSpec

Json = dict[str, Any]

#: In the environment of a coordination command (and of what it starts): its run's id. What it left running
#: is found by it and killed, never by a process group number that may be another's by then.
COORDINATION_MARK = "OPENBATCH_COORDINATION"


class InstanceLink(Protocol):
    """The agent's side of an instance: it reports the coordination's end and passes the server's go on."""

    def coordinated(self, result: RunResult) -> None: ...

    async def proceed(self) -> None: ...


class Coordination:
    """The coordination of one instance: run it with :meth:`run`, :meth:`end` what it left running."""

    def __init__(self, spec: RunSpec, settings: RunMultiInstance, root: str, task_dir: str, working_dir: str,
                 user: Credentials | None, env: dict[str, str]) -> None:
        self.spec = spec
        self.settings = settings
        self.shared_dir = os.path.normpath(f"{root}/{settings.sharedDir}")
        self.task_dir = task_dir
        self.working_dir = working_dir
        self.user = user
        env["AZ_BATCH_TASK_SHARED_DIR"] = self.shared_dir
        self.env = env
        self.started = False   # the coordination command was started (what it leaves must be killed)

    async def run(self, deadline: float | None, failed: Any) -> RunResult | None:
        """Common files, then the coordination command: None when it succeeded, else the run's failed result
        (``failed(begin, failure, pre_processing)`` makes one)."""
        begin = utcnow()
        try:
            if self.shared_dir != self.task_dir:   # a subtask's directory is inside the shared one
                _share(self.shared_dir, self.user)
            await self._download(deadline)
        except TimeoutError:
            return failed(begin, wall_clock_expired(), False)
        except _Failed as error:
            return failed(begin, error.failure, True)
        except OSError as error:
            return failed(begin, failure_info("ResourceDirectoryCreateFailed", "The task's shared directory could not "
                                          "be prepared", [("Message", str(error))]), True)
        command = (self.settings.coordinationCommandLine or "").strip()
        if not command:
            return None
        try:
            argv = split_command_line(command)
        except CommandLineError as error:
            return failed(begin, failure_info("CommandLaunchFailed", "The coordination command line could not be "
                                          "launched", [("Message", str(error))]), False)
        out, err = open_outputs(self.task_dir)
        try:
            pid = spawn(argv, self.working_dir, {**self.env, COORDINATION_MARK: self.spec.id}, out, err, self.user)
        except (OSError, ValueError) as error:
            return failed(begin, failure_info("CommandLaunchFailed", "The coordination command line could not be "
                                          "launched", [("Message", f"{argv[0]}: {error}")]), False)
        finally:
            os.close(out)
            os.close(err)
        self.started = True
        REAPER.watch(pid)
        child = Child(pid, asyncio.get_running_loop())
        try:
            async with asyncio.timeout_at(deadline):
                code = await child.wait()
        except TimeoutError:
            await terminate(child)
            return failed(begin, wall_clock_expired(), False)
        except BaseException:
            await terminate(child)
            raise
        finally:
            REAPER.release(pid)   # (its group's number may be another's soon: what it left is found by its mark)
        code = 128 - code if code < 0 else code
        if code != 0:
            self.end()
            return RunResult(start_time=begin, end_time=utcnow(), exit_code=code, result="failure", failure=failure_info(
                "FailureExitCode", "The coordination command exited with an exit code representing a failure",
                [("Message", f"The coordination command exited with exit code {code}")]))
        return None

    async def _download(self, deadline: float | None) -> None:
        files = self.settings.commonResourceFiles
        if not files:
            return
        from .resource_files import ResourceFileError, download

        before = _entries(self.shared_dir)
        try:
            async with asyncio.timeout_at(deadline):
                await download(files, Path(self.shared_dir))
        except ResourceFileError as error:
            raise _Failed(error.failure()) from None
        if self.user is not None:
            await asyncio.to_thread(_give_new_entries, self.shared_dir, before, self.user)

    def end(self) -> None:
        """Kill whatever the coordination command left running (the processes carrying its mark)."""
        if self.started:
            self.started = False
            _kill_marked(f"{COORDINATION_MARK}={self.spec.id}".encode())


def _kill_marked(needle: bytes) -> None:
    """SIGKILL every process whose environment holds ``needle`` (NAME=value), until none is left."""
    for _ in range(3):   # (one may fork while the others die)
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as environ:
                    if needle not in environ.read().split(b"\0"):
                        continue
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
            except OSError:   # gone meanwhile, or not ours to read
                continue
        if not found:
            return


class _Failed(Exception):
    def __init__(self, failure: Json) -> None:
        super().__init__(failure.get("message"))
        self.failure = failure


def coordinated_result(begin: datetime) -> RunResult:
    return RunResult(start_time=begin, end_time=utcnow(), exit_code=0, failure=None, result="success")


async def hold() -> None:
    """A subtask keeps its node (and what its coordination started) until the server ends it."""
    await asyncio.Event().wait()


def _share(shared_dir: str, user: Credentials | None) -> None:
    """The shared directory (a subtask's parent) as a task's own: root's, the account's group may add to it."""
    os.makedirs(shared_dir, exist_ok=True)
    if user is not None and os.lstat(shared_dir).st_gid != user.gid:
        os.lchown(shared_dir, 0, user.gid)
        os.chmod(shared_dir, 0o1775)


def _entries(directory: str) -> dict[str, int]:
    return {entry.name: entry.inode() for entry in os.scandir(directory)}


def _give_new_entries(directory: str, before: dict[str, int], user: Credentials) -> None:
    """What the download added or replaced in ``directory`` becomes the account's (links not followed)."""
    for entry in os.scandir(directory):
        if before.get(entry.name) == entry.inode():
            continue
        if stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
            give_to(user, entry.path)
        else:
            os.lchown(entry.path, user.uid, user.gid)
