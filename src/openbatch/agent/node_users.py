"""Node users (ComputeNode AddUser, UpdateUser, DeleteUser) made real on this host.

The server sends the settings (domain/node_users.py); the account is made here, marked as
this node's in its comment field, so that it leaves with the node (removal, reimage) and
another node sharing this host cannot touch it: an account of that name that is not this
node's answers ``NodeUserExists`` (add) or ``NodeUserNotFound`` (update, delete).
Accounts expire on their day (``useradd --expiredate``); admin rights are the group
``_azbatchsudogrp`` with passwordless sudo; the SSH key is ``~/.ssh/authorized_keys``.
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path
from typing import Any

from .accounts import ADMIN_GROUP, NODE_MARK, AccountError, grant_sudo, group_named, host_lock, lookup, run_tool

__all__ = ["NodeUserError", "add_user", "delete_user", "node_mark", "update_user"]

Json = dict[str, Any]


class NodeUserError(Exception):
    """An answer for the API: a Batch error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def node_mark(node_root: str) -> str:
    """The comment field of this node's users (accounts.py removes them with the node)."""
    return NODE_MARK + os.path.abspath(node_root)


def add_user(node_root: str, settings: Json) -> None:
    name = settings["name"]
    _may_manage()
    with host_lock():
        if lookup(name) is not None:
            raise NodeUserError("NodeUserExists", f"The user '{name}' already exists on the node.")
        _tool(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--comment", node_mark(node_root),
               "--expiredate", settings["expiryTime"][:10], name])
        _apply(settings)


def update_user(node_root: str, settings: Json) -> None:
    name = settings["name"]
    _may_manage()
    with host_lock():
        _own(node_root, name)
        _tool(["usermod", "--expiredate", settings["expiryTime"][:10], name])
        _apply(settings)


def delete_user(node_root: str, name: str) -> None:
    _may_manage()
    with host_lock():
        _own(node_root, name)
        _tool(["userdel", "--remove", "--force", name])


def _may_manage() -> None:
    if os.geteuid() != 0:
        raise NodeUserError("OperationNotValidOnNode", "The agent hosting this node does not run as root: it cannot "
                            "manage the node's user accounts.")


def _own(node_root: str, name: str) -> None:
    entry = lookup(name)
    if entry is None or entry.pw_gecos != node_mark(node_root):
        raise NodeUserError("NodeUserNotFound", f"The node has no user '{name}'.")


def _apply(settings: Json) -> None:
    """Password, admin rights and SSH key as ``settings`` say (what they leave out is removed)."""
    name = settings["name"]
    if settings.get("password"):
        _tool(["chpasswd"], f"{name}:{settings['password']}\n")
    else:
        _tool(["usermod", "--password", "*", name])   # no password works: only the key logs in
    admin_members = grp.getgrnam(ADMIN_GROUP).gr_mem if group_named(ADMIN_GROUP) else []
    if "isAdmin" not in settings:   # an update: the account keeps its rights
        pass
    elif settings["isAdmin"]:
        if not group_named(ADMIN_GROUP):
            _tool(["groupadd", "--system", ADMIN_GROUP])
        _tool(["usermod", "--append", "--groups", ADMIN_GROUP, name])
        grant_sudo()
    elif name in admin_members:
        _tool(["gpasswd", "--delete", name, ADMIN_GROUP])
    entry = pwd.getpwnam(name)
    ssh = Path(entry.pw_dir) / ".ssh"
    keys = ssh / "authorized_keys"
    if settings.get("sshPublicKey"):
        ssh.mkdir(mode=0o700, exist_ok=True)
        keys.write_text(settings["sshPublicKey"].strip() + "\n")
        os.chmod(keys, 0o600)
        os.chown(keys, entry.pw_uid, entry.pw_gid)
        os.chown(ssh, entry.pw_uid, entry.pw_gid)
    elif keys.exists():
        keys.unlink()


def _tool(argv: list[str], stdin: str | None = None) -> None:
    try:
        run_tool(argv, stdin)
    except AccountError as error:
        raise NodeUserError("OperationNotValidOnNode", error.message) from None
