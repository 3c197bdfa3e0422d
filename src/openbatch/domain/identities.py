"""Who a task runs as: a task's ``userIdentity`` and its pool's ``userAccounts``, as Azure's Linux nodes do.

A task that names no identity runs as the pool's non-admin auto user (``PoolNonAdmin``,
the account ``_azbatch`` on Azure's Linux nodes and here). ``autoUser`` picks the scope
(``pool``: one account shared by the pool's tasks on a node; ``task``: an account of the
task's own) and the elevation (``admin``: the task runs with root's rights). ``username``
names one of the pool's ``userAccounts``, which the node creates as real accounts.

:func:`run_user` turns the identity into what the agent needs (``protocol.RunUser``); the
default identity is ``None`` on the wire, so the common run carries nothing more. A name the
pool does not define is sent as ``known=False``: the run then fails on the node with a user
error (the task may have been added before its pool, or its pool changed), as on Azure.
"""

from __future__ import annotations

import re
from typing import Any

from ..protocol import RunUser
from .errors import invalid_property

Json = dict[str, Any]

#: The pool-wide non-admin auto user's account (as on Azure's Linux nodes).
POOL_USER = "_azbatch"
#: Names a pool's user account may not take: the accounts the nodes use themselves.
RESERVED_NAMES = frozenset({"root", POOL_USER, "_azbatchsudogrp"})
#: Task-scope auto users' accounts begin so (agent/accounts.py).
RESERVED_PREFIX = "_azbt"
#: A Linux account name (useradd's rule), at most 20 characters (the Swagger's limit).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,19}")
_MAX_ID = 2**31 - 2


def run_user(identity: Json | None, accounts: list[Json] | None) -> RunUser | None:
    """What the agent runs a task with ``identity`` as, on a node of a pool with ``accounts``."""
    if not identity:
        return None
    name = identity.get("username")
    if name is not None:
        account = next((a for a in accounts or () if a.get("name", "").lower() == name.lower()), None)
        if account is None:
            return RunUser(name=name, known=False)
        linux = account.get("linuxUserConfiguration") or {}
        return RunUser(name=account["name"], admin=account.get("elevationLevel") == "admin",
                       password=account.get("password") or None, uid=linux.get("uid"), gid=linux.get("gid"),
                       sshPrivateKey=linux.get("sshPrivateKey") or None)
    auto = identity.get("autoUser") or {}
    scope, admin = auto.get("scope") or "pool", auto.get("elevationLevel") == "admin"
    if scope == "pool" and not admin:
        return None
    return RunUser(scope=scope, admin=admin)


def check_user_identity(identity: Any, path: str) -> None:
    """A task's ``userIdentity`` (a struct with ``username`` and ``autoUser``): one of them, not both."""
    if identity is None:
        return
    if identity.username is not None and identity.autoUser is not None:
        raise invalid_property(f"{path}/username", identity.username,
                               "The userName and autoUser properties are mutually exclusive.")
    if identity.username is not None and not identity.username:
        raise invalid_property(f"{path}/username", identity.username, "The user name must not be empty.")


def check_user_accounts(accounts: list[Json] | None) -> None:
    """A pool's ``userAccounts``: Linux account names, each once, uid and gid together."""
    seen: set[str] = set()
    for index, account in enumerate(accounts or ()):
        where = f"userAccounts/{index}"
        name = account.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise invalid_property(f"{where}/name", name, "A user name on a Linux node has at most 20 characters: "
                                   "letters, digits, '_', '.' and '-', not starting with a digit, '.' or '-'.")
        if name.lower() in RESERVED_NAMES or name.lower().startswith(RESERVED_PREFIX):
            raise invalid_property(f"{where}/name", name, "This account name is used by the nodes themselves.")
        if name.lower() in seen:
            raise invalid_property(f"{where}/name", name, "Another user account has the same name.")
        seen.add(name.lower())
        if not account.get("password"):
            raise invalid_property(f"{where}/password", "", "A user account needs a password.")
        if any(c in account["password"] for c in "\n\r\0"):
            raise invalid_property(f"{where}/password", "", "A password may not contain a line break or NUL.")
        linux = account.get("linuxUserConfiguration") or {}
        uid, gid = linux.get("uid"), linux.get("gid")
        if (uid is None) != (gid is None):
            raise invalid_property(f"{where}/linuxUserConfiguration/uid", uid,
                                   "The uid and gid properties must be specified together or not at all.")
        for key, value in (("uid", uid), ("gid", gid)):
            if value is not None and not (isinstance(value, int) and 1 <= value <= _MAX_ID):
                raise invalid_property(f"{where}/linuxUserConfiguration/{key}", value,
                                       f"Must be between 1 and {_MAX_ID}.")
