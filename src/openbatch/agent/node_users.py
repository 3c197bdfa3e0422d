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
from datetime import date, timedelta
from typing import Any

from .accounts import (ADMIN_GROUP, NODE_MARK, AccountError, check_account_name, check_password, grant_sudo,
                       group_named, host_lock, lookup, run_tool, write_ssh_files)

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
    name = _name(settings["name"])
    _may_manage()
    with host_lock():
        if lookup(name) is not None:
            raise NodeUserError("NodeUserExists", f"The user '{name}' already exists on the node.")
        _tool(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--comment", node_mark(node_root),
               "--expiredate", _expiry_day(settings["expiryTime"]), "--", name])
        try:
            _apply(settings)
        except BaseException:   # no half-made account: AddUser failed, nothing was added
            run_tool(["userdel", "--remove", "--force", "--", name])
            raise


def update_user(node_root: str, settings: Json) -> None:
    name = _name(settings["name"])
    _may_manage()
    with host_lock():
        _own(node_root, name)
        _tool(["usermod", "--expiredate", _expiry_day(settings["expiryTime"]), "--", name])
        _apply(settings)


def delete_user(node_root: str, name: str) -> None:
    name = _name(name)
    _may_manage()
    with host_lock():
        _own(node_root, name)
        _tool(["userdel", "--remove", "--force", "--", name])


def _name(name: str) -> str:
    try:
        return check_account_name(name)
    except AccountError:
        raise NodeUserError("NodeUserNotFound", f"The node has no user '{name}'.") from None


def _expiry_day(expiry: str) -> str:
    """useradd's expiry day: the account works through the day of ``expiry`` (UTC) and ends after it."""
    return (date.fromisoformat(expiry[:10]) + timedelta(days=1)).isoformat()


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
        _tool(["chpasswd"], f"{name}:{_checked(settings['password'])}\n")
    else:
        _tool(["usermod", "--password", "*", "--", name])   # no password works: only the key logs in
    admin_members = grp.getgrnam(ADMIN_GROUP).gr_mem if group_named(ADMIN_GROUP) else []
    if "isAdmin" not in settings:   # an update: the account keeps its rights
        pass
    elif settings["isAdmin"]:
        if not group_named(ADMIN_GROUP):
            _tool(["groupadd", "--system", ADMIN_GROUP])
        _sudo()
        _tool(["usermod", "--append", "--groups", ADMIN_GROUP, "--", name])
    elif name in admin_members:
        _tool(["gpasswd", "--delete", name, ADMIN_GROUP])
    key = (settings.get("sshPublicKey") or "").strip()
    try:
        if key:
            write_ssh_files(pwd.getpwnam(name), {"authorized_keys": (key.splitlines()[0] + "\n", 0o600)})
        else:
            write_ssh_files(pwd.getpwnam(name), {}, remove=("authorized_keys",))
    except AccountError as error:
        raise NodeUserError("OperationNotValidOnNode", error.message) from None


def _checked(password: str) -> str:
    try:
        return check_password(password)
    except AccountError as error:
        raise NodeUserError("InvalidPropertyValue", error.message) from None


def _sudo() -> None:
    try:
        grant_sudo()
    except AccountError as error:
        raise NodeUserError("OperationNotValidOnNode", error.message) from None


def _tool(argv: list[str], stdin: str | None = None) -> None:
    try:
        run_tool(argv, stdin)
    except AccountError as error:
        raise NodeUserError("OperationNotValidOnNode", error.message) from None
