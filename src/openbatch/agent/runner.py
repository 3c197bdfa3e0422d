"""Run one task process on this node, as an Azure Batch Linux node does.

``run(spec)`` reads top to bottom: create the directories, download the resource
files, split the command line (no shell), start the process with the task's
environment, wait for it (bounded by ``maxWallClockTime``), upload its output
files (:mod:`.output_files`; an upload error fails the run), return a
:class:`RunResult`. The agent's connection loop owns everything else (reporting,
retries, state); this module never talks to the server.

Layout (relative to the node root): the task directory ``<task_dir>`` holds
``stdout.txt``, ``stderr.txt`` and the working directory ``wd/``, which is the
process's cwd. ``shared/`` and ``startup/`` are created when missing. The process
writes straight into ``stdout.txt`` / ``stderr.txt`` (inherited file descriptors,
truncated at each attempt) so the Files API can read them while it runs.

Processes and their descendants: every process starts in a new session (its own
process group). Terminating it (cancellation of the asyncio task running
:func:`run`, or ``maxWallClockTime`` expiry) sends SIGTERM to the whole group,
then SIGKILL after :data:`KILL_GRACE_SECONDS`. A process that exits normally
leaves whatever it deliberately left running in the background alone (start
tasks commonly launch daemons that way).

Waiting costs no thread and no polling: the process's pidfd is registered with
the event loop and becomes readable when it exits; the callback reaps it (even
when nobody awaits any more, so no zombie remains). ``asyncio.create_subprocess_exec``
is not used on purpose: on Python 3.11 its default child watcher starts one
thread per process, and its pipes/transport machinery is unused work here
(output goes to files). Where pidfds are unavailable (non-Linux), a waiter
thread per process is the fallback. Processes start through :func:`.spawn.spawn`
(``posix_spawn``: half the agent's CPU of ``subprocess.Popen`` per process).

Timing: ``maxWallClockTime`` counts from the start of the attempt (Azure's
"running" state includes the resource file downloads), so a download that eats
the budget also ends the attempt with ``MaxWallClockTimeExpiry``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .accounts import AccountError, Accounts, Credentials

if TYPE_CHECKING:
    from .containers import ContainerRun
    from .instances import Coordination, InstanceLink
from .commandline import CommandLineError, split_command_line
from .environment import task_environment, task_paths
from .reaper import REAPER
from .processes import (KILL_GRACE_SECONDS, Child, failure_info, give_to, not_started, utcnow, open_outputs, reap,
                        terminate, wall_clock_expired)
from .spawn import spawn
from .spec import RunResult, RunSpec

__all__ = ["KILL_GRACE_SECONDS", "RUN_GROUPS", "RunResult", "RunSpec", "run"]

log = logging.getLogger(__name__)

#: Run id -> the process group of its process, while it runs (for a kill without grace).
RUN_GROUPS: dict[str, int] = {}


_LAUNCH_MESSAGES = {
    "CommandProgramNotFound": "The specified command program is not found",
    "CommandLaunchFailed": "The task's command line could not be launched",
}


def _launch_failed(begin: datetime, code: str, detail: str) -> RunResult:
    """The process could not be started (Azure reports no exit code and no pre-processing error)."""
    failure = failure_info(code, _LAUNCH_MESSAGES[code], [("Message", detail)])
    return not_started(begin, failure, pre_processing=False)


def _setup_failed(begin: datetime, message: str, exc: OSError, task_dir: str) -> RunResult:
    details = [("Message", str(exc)), ("TaskDirectory", task_dir)]
    failure = failure_info("ResourceDirectoryCreateFailed", message, details)
    return not_started(begin, failure, pre_processing=True)


_ACCOUNTS: list[Accounts] = []


def _default_accounts() -> Accounts:
    """The accounts of runs that name no set (tests, tools): one set per process."""
    if not _ACCOUNTS:
        _ACCOUNTS.append(Accounts(owner=""))
    return _ACCOUNTS[0]


#: Node roots whose ``shared`` and ``startup`` directories this process has made sure of.
_NODE_DIRS_READY: set[str] = set()


def _make_directories(root: str, task_dir: str, working_dir: str, user: Credentials | None) -> None:
    """The task's directory and ``wd/`` (and the node's ``shared``/``startup``, once per process: ``shared`` is
    every task's to write, sticky, as /tmp). The task's directory stays root's, writable by the account's
    group but sticky (mode 1775): the task may add files there, but what root put there (stdout.txt,
    stderr.txt, wd/) cannot be removed or swapped for a link. ``wd/`` is root's again at the start of each
    attempt and becomes the account's once the resource files are in it (:func:`give_to`).

    The common case (the job's directory exists, the task's does not) costs two mkdir calls.
    """
    if not task_dir.startswith(root + os.sep):
        raise OSError(f"the task directory '{task_dir}' is not inside the node root directory '{root}'")
    if root not in _NODE_DIRS_READY:
        for name in ("shared", "startup"):
            os.makedirs(os.path.join(root, name), exist_ok=True)
        os.chmod(os.path.join(root, "shared"), 0o1777)
        _NODE_DIRS_READY.add(root)
    try:
        os.mkdir(task_dir)
        os.mkdir(working_dir)
    except OSError:  # a parent is missing (the job's first task here), or a rerun finds them
        os.makedirs(os.path.dirname(task_dir), exist_ok=True)
        _make_own_directory(task_dir, user)
        _make_own_directory(working_dir, None)
    found = os.lstat(working_dir)
    if not stat.S_ISDIR(found.st_mode):   # (a link left by an earlier attempt: never followed)
        raise OSError(f"the working directory '{working_dir}' is not a directory")
    if user is not None:
        if os.lstat(task_dir).st_gid != user.gid:
            os.lchown(task_dir, 0, user.gid)
            os.chmod(task_dir, 0o1775)
        if found.st_uid != 0:   # an earlier attempt's: root's again, so no process of the account can swap it
            os.lchown(working_dir, 0, found.st_gid)


def _make_own_directory(path: str, user: Credentials | None) -> None:
    """``path`` as a directory (made if missing), never through a link. A task's directory inside one its
    account may write to (a subtask's, in its task's shared directory) must be root's: one the account
    made could be swapped for a link to anywhere."""
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    found = os.lstat(path)
    if not stat.S_ISDIR(found.st_mode) or (user is not None and found.st_uid != 0 and os.geteuid() == 0):
        raise OSError(f"'{path}' is not a directory of this node's own (a task put it there)")


async def _account(accounts: Accounts, spec: RunSpec, root: str) -> Credentials | None:
    """The run's account: at once when it is known, else from a thread (it may be created)."""
    if accounts.known(spec.user):
        return accounts.credentials(spec.user, root, spec.task_dir)
    return await asyncio.to_thread(accounts.credentials, spec.user, root, spec.task_dir)


async def run(spec: RunSpec, started: Callable[[datetime], Awaitable[None]] | None = None,
              accounts: Accounts | None = None, link: InstanceLink | None = None) -> RunResult:
    """Create the directories, download resource files, start the process, wait, return the result.

    ``started`` is awaited right after the process starts (the agent reports it). ``accounts``: this
    host's task accounts (accounts.py; the agent's, or a new set). ``link``: the agent's side of an
    instance of a multi-instance task (instances.py), which coordinates first.
    Cancelling the task running this terminates the process group, then re-raises.
    """
    loop = asyncio.get_running_loop()
    begin = utcnow()
    deadline = None if spec.max_wall_clock is None else loop.time() + spec.max_wall_clock
    paths = root, task_dir, working_dir = task_paths(spec)

    try:
        user = await _account(accounts or _default_accounts(), spec, root)
    except AccountError as exc:
        return not_started(begin, exc.failure(), pre_processing=True)
    try:
        _make_directories(root, task_dir, working_dir, user)
    except OSError as exc:
        return _setup_failed(begin, "The task's directories could not be created", exc, task_dir)

    if spec.resource_files:
        from .resource_files import ResourceFileError, download  # imports httpx: only agents that download

        try:
            async with asyncio.timeout_at(deadline) as window:
                await download(spec.resource_files, Path(working_dir))
        except ResourceFileError as exc:
            return not_started(begin, exc.failure(), pre_processing=True)
        except TimeoutError:
            if not window.expired():
                raise
            return not_started(begin, wall_clock_expired(), pre_processing=False)

    if user is not None:
        try:
            if spec.resource_files:
                await asyncio.to_thread(give_to, user, working_dir)
            elif os.lstat(working_dir).st_uid != user.uid:   # (root's: nothing was put in it)
                os.lchown(working_dir, user.uid, user.gid)
        except OSError as exc:
            return _setup_failed(begin, "The task's working directory could not be given to its account", exc,
                                 task_dir)
    env = {**task_environment(spec, paths), **REAPER.environment}   # (the reaper finds it by its mark too)
    env["AZ_BATCH_TASK_USER"] = Accounts.name_of(user)
    if spec.multi_instance is not None:
        from .instances import Coordination

        coordination = Coordination(spec, spec.multi_instance, root, task_dir, working_dir, user, env)
        try:
            return await _coordinated(spec, coordination, link, begin, deadline, loop, started, env, paths, user)
        finally:
            coordination.end()
    return await _launch(spec, begin, deadline, loop, started, env, paths, user)


async def _coordinated(spec: RunSpec, coordination: Coordination, link: InstanceLink | None, begin: datetime,
                       deadline: float | None, loop: asyncio.AbstractEventLoop,
                       started: Callable[[datetime], Awaitable[None]] | None, env: dict[str, str],
                       paths: tuple[str, str, str], user: Credentials | None) -> RunResult:
    """An instance of a multi-instance task: coordinate; then a subtask holds its node until it is ended, the
    primary runs the application once the server says every instance coordinated."""
    from .instances import coordinated_result, hold

    if link is None:
        raise RuntimeError("an instance of a multi-instance task runs only under an agent")
    failed = await coordination.run(deadline, lambda at, failure, pre: not_started(at, failure, pre_processing=pre))
    if failed is not None:
        return failed
    link.coordinated(coordinated_result(begin))
    if spec.kind == "subtask":
        await hold()
    try:
        async with asyncio.timeout_at(deadline):
            await link.proceed()
    except TimeoutError:
        return not_started(begin, wall_clock_expired(), pre_processing=False)
    return await _launch(spec, begin, deadline, loop, started, env, paths, user,
                         append=bool(spec.multi_instance and spec.multi_instance.coordinationCommandLine))


async def _launch(spec: RunSpec, begin: datetime, deadline: float | None, loop: asyncio.AbstractEventLoop,
                  started: Callable[[datetime], Awaitable[None]] | None, env: dict[str, str],
                  paths: tuple[str, str, str], user: Credentials | None, append: bool = False) -> RunResult:
    """The task's own process, in its container if it has one."""
    root, task_dir, working_dir = paths
    try:
        argv = split_command_line(spec.command_line)
    except CommandLineError as exc:
        return _launch_failed(begin, "CommandLaunchFailed", str(exc))

    container = None
    if spec.container is not None:
        from .containers import ContainerError, prepare   # only nodes that run containers need it

        try:
            container = await asyncio.to_thread(prepare, spec.container, spec.id, argv, env, root, task_dir,
                                                working_dir, env.get("AZ_BATCH_JOB_PREP_DIR"), user)
        except ContainerError as exc:
            return not_started(begin, exc.failure(), pre_processing=True)
        argv = container.start_argv()   # the engine's command line, as root (the container runs as the account)
        user = None
    try:
        return await _run_process(spec, loop, begin, deadline, started, argv, env, task_dir, working_dir, user,
                                  container, append)
    finally:
        if container is not None:
            await asyncio.to_thread(container.remove)


async def _run_process(spec: RunSpec, loop: asyncio.AbstractEventLoop, begin: datetime, deadline: float | None,
                       started: Callable[[datetime], Awaitable[None]] | None, argv: list[str], env: dict[str, str],
                       task_dir: str, working_dir: str, user: Credentials | None,
                       container: ContainerRun | None, append: bool = False) -> RunResult:
    """Start the process, wait for it (its container too), upload the outputs. ``append``: after what the
    coordination command of a multi-instance task wrote to stdout.txt/stderr.txt."""
    try:
        out, err = open_outputs(task_dir, append)
    except OSError as exc:
        return _setup_failed(begin, "The task's output files could not be created", exc, task_dir)
    try:
        pid = spawn(argv, working_dir, env if container is None else container.start_env(), out, err, user)
    except FileNotFoundError as exc:
        return _launch_failed(begin, "CommandProgramNotFound", f"{argv[0]}: {exc.strerror}")
    except (OSError, ValueError) as exc:  # not executable, exec format error, NUL in the environment, ...
        strerror = exc.strerror if isinstance(exc, OSError) else None
        detail = f"{argv[0]}: {strerror}" if strerror else str(exc)
        return _launch_failed(begin, "CommandLaunchFailed", detail)
    finally:
        os.close(out)
        os.close(err)
    start = utcnow()
    try:
        child = Child(pid, loop)
    except BaseException:  # could not watch it: do not leave it running unobserved
        os.killpg(pid, signal.SIGKILL)
        reap(pid)
        raise

    timed_out = False
    RUN_GROUPS[spec.id] = pid
    REAPER.watch(pid)
    try:
        if started is not None:
            await started(start)
        if deadline is None:
            code = await child.wait()
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    code = await child.wait()
            except TimeoutError:
                timed_out = True
                if container is not None:   # the attached command line does not pass SIGKILL on
                    await asyncio.to_thread(container.kill)
                code = await terminate(child)
    except BaseException:  # cancelled (task/job terminated, node removed) or `started` failed
        if container is not None:
            await asyncio.to_thread(container.kill)
        await terminate(child)
        raise
    finally:
        RUN_GROUPS.pop(spec.id, None)
        REAPER.release(pid)
    end = utcnow()
    container_info = await asyncio.to_thread(container.info) if container is not None else None

    exit_code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell reports it
    if timed_out:
        failure: dict[str, Any] | None = wall_clock_expired()
    elif exit_code != 0:
        failure = failure_info("FailureExitCode", "The task exited with an exit code representing a failure",
                           [("Message", f"The task exited with exit code {exit_code}")])
    else:
        failure = None
    if spec.output_files:
        from .output_files import UploadError, upload_outputs  # imports azure-storage-blob: only when needed

        try:
            await upload_outputs(spec.output_files, working_dir, task_dir, env, failure is None)
        except UploadError as exc:
            failure = exc.failure()
        end = utcnow()   # the task completes once its outputs are uploaded
    return RunResult(start_time=start, end_time=end, exit_code=exit_code, failure=failure,
                     result="success" if failure is None else "failure", container_info=container_info)
