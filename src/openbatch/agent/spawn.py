"""Start a task process: ``posix_spawn`` in the task's working directory, in a session of its own.

What ``subprocess.Popen(argv, cwd=..., env=..., stdin=DEVNULL, stdout=..., stderr=...,
start_new_session=True)`` does, for about half the agent's CPU (~100 instead of ~190 µs
a process on this machine, the child's own exec cost aside): no Python-level argument
and environment conversion, no error pipe. The differences are handled here:

- ``posix_spawn`` has no working directory of its own (Python 3.11 exposes no chdir file
  action), so the agent's directory is changed around the call. The agent's event loop
  is its only thread that starts processes, and every path the agent uses is absolute.
- A command without a ``/`` is looked up in the task's own ``PATH`` (``posix_spawnp``
  would use the agent's), like Popen: the first executable regular file wins; a match
  that is not executable makes the error ``PermissionError`` when nothing else matches.
- ``SIGPIPE`` and ``SIGXFSZ``, which Python ignores, are reset to their defaults in the
  child (Popen's ``restore_signals``); every other disposition is inherited as with Popen.
- Another user (``user``, a root agent only): ``posix_spawn`` cannot switch users, but its
  ``POSIX_SPAWN_RESETIDS`` sets the child's effective user and group to the caller's real
  ones. So the agent makes the account its *real* user and group (and its groups its
  supplementary groups) around the call, keeping root as its effective and saved ids (its
  rights never change), and restores them at once: in the spawning thread only (direct
  system calls; the child is cloned from that thread). At ``execve`` the child's saved ids
  become its effective ones and its capabilities are dropped (none of its ids is 0): it is
  that user and nothing more, for ~10 µs instead of a fork (Popen's ``user=``, ~0.5 ms of
  the agent's CPU) or a wrapper process (``setpriv``, ~0.9 ms). While the ids are switched
  (microseconds) a process of that user may signal the agent; it gains nothing else.
- Descriptors other than 0-2 do not leak. Python, uvloop and aiohttp open theirs
  close-on-exec (PEP 446); the first spawn also marks close-on-exec whatever the
  process inherited or made inheritable before (Popen's ``close_fds`` closes them in
  each child instead).
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import stat
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .accounts import Credentials

__all__ = ["spawn"]

_DEFAULTS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def spawn(argv: Sequence[str], cwd: str, env: Mapping[str, str], stdout: int, stderr: int,
          user: Credentials | None = None) -> int:
    """Start ``argv`` in ``cwd`` with exactly ``env``, stdin from /dev/null, stdout and stderr on the
    given descriptors, as the leader of a new session (as ``user``, if given); its pid.

    Raises ``FileNotFoundError`` (no such program), ``PermissionError``, another ``OSError``
    (exec format error, ...) or ``ValueError`` (a NUL in an argument or the environment).
    """
    if not argv:
        raise ValueError("the command line is empty")
    if not _sealed:
        _seal_descriptors()
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2)]
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(cwd)
        try:
            executable = _executable(argv[0], env)
            if user is None:
                return os.posix_spawn(executable, list(argv), env, file_actions=actions, setsid=True,
                                      setsigdef=_DEFAULTS)
            groups, uids, gids = os.getgroups(), os.getresuid(), os.getresgid()
            try:
                _set_ids(user.groups or (user.gid,), (user.gid, gids[1], gids[2]), (user.uid, uids[1], uids[2]))
                return os.posix_spawn(executable, list(argv), env, file_actions=actions, setsid=True,
                                      setsigdef=_DEFAULTS, resetids=True)
            finally:
                _set_ids(groups, gids, uids)
        finally:
            os.fchdir(home)
    finally:
        os.close(home)


_sealed = False

#: setresuid, setresgid and setgroups system call numbers, where known: called directly, they change this
#: thread's ids only. glibc's wrappers change every thread's (POSIX), signalling each thread of the agent
#: and waiting for it: ~80 us a call with the agent's 7 threads, 0.5 ms of CPU a spawn (bench figure 1).
_SYSCALLS = {"x86_64": (117, 119, 116), "aarch64": (147, 149, 159)}.get(platform.machine())
_libc = ctypes.CDLL(None, use_errno=True) if _SYSCALLS else None


def _set_ids(groups: Sequence[int], gids: Sequence[int], uids: Sequence[int]) -> None:
    """This thread's supplementary groups, then its (real, effective, saved) group and user ids."""
    if _libc is None or _SYSCALLS is None:
        os.setgroups(groups)
        os.setresgid(*gids)
        os.setresuid(*uids)
        return
    setresuid, setresgid, setgroups = _SYSCALLS
    array = (ctypes.c_uint * max(1, len(groups)))(*groups)
    for number, args in ((setgroups, (len(groups), array)), (setresgid, tuple(map(ctypes.c_uint, gids))),
                         (setresuid, tuple(map(ctypes.c_uint, uids)))):
        if _libc.syscall(number, *args) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))


def _seal_descriptors() -> None:
    """Mark every open descriptor above 2 close-on-exec (once per process)."""
    global _sealed
    try:
        candidates = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible descriptor number
        candidates = list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65536)))
    for fd in candidates:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:  # closed meanwhile (the listing's own descriptor)
                pass
    _sealed = True


def _executable(name: str, env: Mapping[str, str]) -> str:
    """The program to run: ``name`` itself when it holds a ``/`` (relative to the working
    directory), else the first executable regular file of that name on the task's ``PATH``."""
    if "/" in name:
        return name
    denied: str | None = None
    for directory in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory, name)  # an empty entry means the working directory
        try:
            mode = os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            denied = denied or candidate
            continue
        if stat.S_ISREG(mode) and os.access(candidate, os.X_OK):
            return candidate
        denied = denied or candidate
    if denied is not None:
        raise PermissionError(13, os.strerror(13), denied)
    raise FileNotFoundError(2, os.strerror(2), name)
