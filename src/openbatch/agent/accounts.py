"""The Unix accounts tasks run as on this host, made real as Azure's Linux nodes make them.

Which account a run uses is the server's word (``protocol.RunUser``, domain/identities.py);
here it becomes an account of this host, created when first needed:

- the pool's non-admin auto user (a run with no ``user``): ``_azbatch``, as on Azure, one
  account per host shared by the non-admin tasks of every node here;
- a non-admin auto user of task scope: ``_azbt`` + 12 hex digits of the task's directory,
  an account of that task alone, deleted with the task's directory or its node;
- an admin auto user (either scope): root itself (admin tasks install packages and the like);
- a pool's named account: created with the pool's settings (password, uid/gid, admin rights
  through the group ``_azbatchsudogrp`` and passwordless sudo, its SSH key pair) and marked
  as the pool's in its comment field. An account of that name that openbatch did not create
  for this pool is never taken over: the run fails, saying so. Nodes of one pool that share
  this host share the account; it is deleted when this agent's last node of it leaves.

An agent that is not root cannot switch users: it runs non-admin auto-user tasks as its own
user (there is no other), and fails the runs that need root or a named account, saying why.
Changes to ``/etc/passwd`` are serialised across agents of this host with a lock file.
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..protocol import RunUser
from .failures import TaskFailure

__all__ = ["ADMIN_GROUP", "AccountError", "Accounts", "Credentials", "POOL_USER", "grant_sudo", "group_named",
           "host_lock", "lookup", "NODE_MARK", "run_tool", "task_account_name"]

log = logging.getLogger(__name__)

POOL_USER = "_azbatch"
ADMIN_GROUP = "_azbatchsudogrp"
SUDOERS_FILE = Path("/etc/sudoers.d/openbatch")
LOCK_FILE = Path("/run/lock/openbatch-accounts.lock")
_TASK_PREFIX = "_azbt"
_TASK_MARK = "openbatch task "
_POOL_MARK = "openbatch pool "
NODE_MARK = "openbatch node "   # node users (node_users.py)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a process is started as (spawn.py)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


class AccountError(TaskFailure):
    """The run cannot have the account it needs (a user error: Azure's nodes fail such runs too)."""

    def __init__(self, message: str, details: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__("TaskUserAccountUnavailable", message, details)


#: What the agent lets reach useradd and friends as an account's name (never an option, never ours).
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_RESERVED = frozenset({"root", POOL_USER, ADMIN_GROUP})


def check_account_name(name: str) -> str:
    """``name`` if it may name a pool's or a node's account here (raises AccountError)."""
    if not _SAFE_NAME.fullmatch(name or "") or name.lower() in _RESERVED or name.lower().startswith(_TASK_PREFIX):
        raise AccountError(f"'{name}' cannot be an account name on this node.", [("UserName", name)])
    return name


def check_password(password: str) -> str:
    """A password chpasswd takes as one line."""
    if any(c in password for c in "\n\r\0"):
        raise AccountError("A password may not contain a line break or NUL.")
    return password


def task_account_name(node_root: str, task_dir: str) -> str:
    """The account of a task-scope auto user: the same for every attempt of one task on one node."""
    digest = hashlib.sha256(f"{os.path.abspath(node_root)}\0{task_dir}".encode()).hexdigest()
    return _TASK_PREFIX + digest[:12]


class Accounts:
    """This host's task accounts, as seen by one agent (``owner``: its pool, which marks named accounts)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.is_root = os.geteuid() == 0
        self._pool_user: Credentials | None = None
        #: Named accounts whose settings this agent applied: name -> the settings' digest.
        self._named: dict[str, str] = {}
        #: (node root, uid) pairs known to reach the node's directory.
        self._reachable: set[tuple[str, int]] = set()

    # -- which account a run has ---------------------------------------------------------------

    def known(self, user: RunUser | None) -> bool:
        """Whether :meth:`credentials` answers without blocking (the common run: nothing to look up)."""
        if not self.is_root or (user is not None and user.admin and user.name is None):
            return True
        return (user is None or (user.name is None and user.scope == "pool")) and self._pool_user is not None

    def credentials(self, user: RunUser | None, node_root: str, task_dir: str) -> Credentials | None:
        """The account to run as (None: the agent's own). Blocking (it may create the account)."""
        if user is not None and not user.known:
            raise AccountError(f"The pool has no user account named '{user.name}'.", [("UserName", user.name or "")])
        if not self.is_root:
            if user is not None and (user.admin or user.name is not None):
                who = Accounts.name_of(None)
                raise AccountError(f"The agent hosting this node runs as '{who}', not as root: it can run tasks only "
                                   f"as itself, not as {user.label}. Run the agent (or the server) as root.",
                                   [("UserIdentity", user.label)])
            return None
        if user is not None and user.admin and user.name is None:
            return None
        if user is None or (user.name is None and user.scope == "pool"):
            if self._pool_user is None:
                self._pool_user = self._ensure(POOL_USER, "openbatch auto user", system=True)
            credentials = self._pool_user
        elif user.name is None:
            name = task_account_name(node_root, task_dir)
            credentials = self._ensure(name, _TASK_MARK + os.path.abspath(node_root), system=False)
        else:
            credentials = self._named_account(user)
        self._check_reachable(node_root, credentials)
        return credentials

    @staticmethod
    def name_of(credentials: Credentials | None) -> str:
        """``AZ_BATCH_TASK_USER``: the account's name (the agent's own: its uid when it has no name)."""
        if credentials is not None:
            return credentials.name
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return str(os.geteuid())

    # -- accounts going away ---------------------------------------------------------------------

    def task_dir_removed(self, node_root: str, task_dir: str) -> None:
        """The task's directory is gone: so is its task-scope account, if it had one."""
        if self.is_root:
            self._delete_marked(task_account_name(node_root, task_dir), _TASK_MARK + os.path.abspath(node_root))

    def node_removed(self, node_root: str, last_of_pool: bool) -> None:
        """A node left (or was reimaged): its task accounts and node users go; its pool's named accounts too
        when this agent hosts no other node of the pool."""
        if not self.is_root:
            return
        marks = {_TASK_MARK + os.path.abspath(node_root), NODE_MARK + os.path.abspath(node_root)}
        for entry in pwd.getpwall():
            if entry.pw_gecos in marks or (last_of_pool and entry.pw_gecos == _POOL_MARK + self.owner):
                self._delete_marked(entry.pw_name, entry.pw_gecos)
                self._named.pop(entry.pw_name, None)

    # -- making them ---------------------------------------------------------------------------

    def _ensure(self, name: str, mark: str, *, system: bool) -> Credentials:
        found = lookup(name)
        if found is None:
            with host_lock():
                if lookup(name) is None:
                    args = ["useradd", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/bin/sh", "--comment", mark]
                    run_tool([*args, *(["--system"] if system else []), "--", name])
            found = lookup(name)
        if found is None or found.pw_gecos != mark:
            raise AccountError(f"The account '{name}' exists on this host but openbatch did not create it for "
                               "this purpose; it is not used.", [("UserName", name)])
        return _credentials(found)

    def _named_account(self, user: RunUser) -> Credentials:
        name = check_account_name(user.name or "")
        mark = _POOL_MARK + self.owner
        settings = hashlib.sha256(repr((user.password, user.admin, user.uid, user.gid, user.sshPrivateKey)).encode()
                                  ).hexdigest()
        found = lookup(name)
        if found is not None and found.pw_gecos != mark:
            raise AccountError(f"The account '{name}' already exists on this host and openbatch did not create it "
                               "for this pool (local nodes of different pools share this host's accounts).",
                               [("UserName", name)])
        if found is None or self._named.get(name) != settings:
            with host_lock():
                self._apply_named(user, mark)
            self._named[name] = settings
            found = lookup(name)
            if found is None:
                raise AccountError(f"The account '{name}' could not be created.", [("UserName", name)])
        return _credentials(found)

    def _apply_named(self, user: RunUser, mark: str) -> None:
        """Create (or bring up to date) a pool's named account. Runs under the host lock."""
        name = user.name or ""
        existing = lookup(name)
        if existing is None:
            args = ["useradd", "--create-home", "--shell", "/bin/bash", "--comment", mark]
            if user.uid is not None and user.gid is not None:
                if not _group_exists(user.gid):
                    run_tool(["groupadd", "--gid", str(user.gid), "--", name])
                elif grp.getgrgid(user.gid).gr_name != name:   # never the host's docker, disk, sudo, ... group
                    raise AccountError(f"The gid {user.gid} is the group '{grp.getgrgid(user.gid).gr_name}' of this "
                                       f"host: the account '{name}' cannot have it.", [("UserName", name)])
                args += ["--uid", str(user.uid), "--gid", str(user.gid)]
            else:
                args.append("--user-group")
            run_tool([*args, "--", name])
        elif user.uid is not None and (existing.pw_uid, existing.pw_gid) != (user.uid, user.gid):
            raise AccountError(f"The account '{name}' exists here with uid {existing.pw_uid} and gid "
                               f"{existing.pw_gid}, not those the pool gives it.", [("UserName", name)])
        if user.admin:
            if not group_named(ADMIN_GROUP):
                run_tool(["groupadd", "--system", ADMIN_GROUP])
            grant_sudo()
            run_tool(["usermod", "--append", "--groups", ADMIN_GROUP, "--", name])
        elif group_named(ADMIN_GROUP) and name in grp.getgrnam(ADMIN_GROUP).gr_mem:
            run_tool(["gpasswd", "--delete", name, ADMIN_GROUP])
        if user.password:
            run_tool(["chpasswd"], f"{name}:{check_password(user.password)}\n")
        else:
            run_tool(["passwd", "--lock", "--", name])
        if user.sshPrivateKey:
            _install_key_pair(name, user.sshPrivateKey)
        else:
            write_ssh_files(pwd.getpwnam(name), {}, remove=("id_rsa", "id_rsa.pub", "authorized_keys"))

    def _delete_marked(self, name: str, mark: str) -> None:
        found = lookup(name)
        if found is None or found.pw_gecos != mark:
            return
        with host_lock():
            try:
                run_tool(["userdel", "--force", "--", name] if mark.startswith(_TASK_MARK)
                         else ["userdel", "--remove", "--force", "--", name])
            except AccountError as error:   # still in use by a process, or gone meanwhile
                log.warning("could not delete the account %s: %s", name, error.message)

    def _check_reachable(self, node_root: str, credentials: Credentials) -> None:
        """Every directory above the node's must let the account through (a 0700 home would not)."""
        key = (node_root, credentials.uid)
        if key in self._reachable:
            return
        path = Path(node_root).absolute()
        for directory in [path, *path.parents]:
            try:
                info = directory.stat()
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and not _may_enter(info, credentials):
                raise AccountError(f"The task's account '{credentials.name}' cannot reach the node's directory "
                                   f"{node_root}: {directory} does not let other users through (mode "
                                   f"{stat.S_IMODE(info.st_mode):04o}). Put the node directories (the server's "
                                   "--data-dir) where every user may pass.", [("Directory", str(directory))])
        self._reachable.add(key)


def _may_enter(info: os.stat_result, credentials: Credentials) -> bool:
    if info.st_uid == credentials.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == credentials.gid or info.st_gid in credentials.groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def lookup(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _group_exists(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def group_named(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _credentials(entry: pwd.struct_passwd) -> Credentials:
    groups = tuple(sorted({g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem} | {entry.pw_gid}))
    return Credentials(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def run_tool(argv: list[str], stdin: str | None = None) -> None:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AccountError(f"{argv[0]} could not run: {error}") from None
    if done.returncode != 0:
        raise AccountError(f"{argv[0]} failed (exit code {done.returncode}): {done.stderr.strip()[:300]}")


class host_lock:
    """An exclusive lock of this host's account changes (agents of several pools may share the host)."""

    def __enter__(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


def grant_sudo() -> None:
    """Members of the admin group may use sudo without a password (as on Azure's nodes); without sudo on the
    host there is no admin account to make (raises AccountError)."""
    rule = f"%{ADMIN_GROUP} ALL=(ALL) NOPASSWD:ALL\n"
    if not SUDOERS_FILE.parent.is_dir() or shutil.which("sudo") is None:
        raise AccountError("sudo is not installed on this node's host: an admin account cannot be made.")
    if SUDOERS_FILE.exists() and SUDOERS_FILE.read_text() == rule:
        return
    temporary = SUDOERS_FILE.with_name(".openbatch.tmp")
    temporary.write_text(rule)
    os.chmod(temporary, 0o440)
    os.replace(temporary, SUDOERS_FILE)


def _install_key_pair(name: str, private_key: str) -> None:
    """The account's SSH key pair in ~/.ssh (id_rsa, id_rsa.pub, authorized_keys), as Azure places it."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_private_key(private_key.encode(), None)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(private_key.encode(), None)  # type: ignore[assignment]
        except (ValueError, TypeError) as error:
            raise AccountError(f"The SSH private key of '{name}' cannot be read: {error}") from None
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,   # type: ignore[union-attr]
                                           serialization.PublicFormat.OpenSSH).decode()
    write_ssh_files(pwd.getpwnam(name), {"id_rsa": (private_key.rstrip("\n") + "\n", 0o600),
                                         "id_rsa.pub": (public + "\n", 0o644),
                                         "authorized_keys": (public + "\n", 0o600)})


def write_ssh_files(entry: pwd.struct_passwd, files: dict[str, tuple[str, int]], remove: Sequence[str] = ()) -> None:
    """Files of the account's ``~/.ssh``, written by root without following a link the account made there
    (a ``~/.ssh`` that is a link, or not the account's own directory, is refused)."""
    home = os.open(entry.pw_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if files:
            try:
                os.mkdir(".ssh", 0o700, dir_fd=home)
                os.chown(".ssh", entry.pw_uid, entry.pw_gid, dir_fd=home, follow_symlinks=False)
            except FileExistsError:
                pass
        try:
            ssh = os.open(".ssh", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home)
        except FileNotFoundError:
            return
        except OSError:
            raise AccountError(f"~/.ssh of '{entry.pw_name}' is not a directory: its keys are not written.") from None
        try:
            if os.fstat(ssh).st_uid != entry.pw_uid:
                raise AccountError(f"~/.ssh of '{entry.pw_name}' is not the account's own directory.")
            for name in (*files, *remove):
                try:
                    os.unlink(name, dir_fd=ssh)
                except FileNotFoundError:
                    pass
            for name, (content, mode) in files.items():
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                             dir_fd=ssh)
                try:
                    os.write(fd, content.encode())
                    os.fchmod(fd, mode)
                    os.fchown(fd, entry.pw_uid, entry.pw_gid)
                finally:
                    os.close(fd)
        finally:
            os.close(ssh)
    finally:
        os.close(home)
