"""Node users (ComputeNode AddUser, UpdateUser, DeleteUser): accounts a person logs in to a node with.

Unlike a pool's ``userAccounts`` (what tasks run as), these are for SSH: a password and/or
an SSH public key, an expiry (the default is a day from now; a Linux account expires on a
day, so the time is kept to the day), admin rights or not. The account is made on the
node's host by its agent (agent/accounts.py); UpdateUser replaces everything: a password or
key left out is removed, an expiry left out is a day from now again.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from . import clock
from .errors import invalid_property
from .identities import RESERVED_NAMES, RESERVED_PREFIX

Json = dict[str, Any]

DEFAULT_LIFETIME = timedelta(days=1)
#: A Linux account name (useradd's rule), as long as useradd allows.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
              "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise invalid_property("name", name, "A user name on a Linux node has at most 32 characters: letters, "
                               "digits, '_', '.' and '-', not starting with a digit, '.' or '-'.")
    if name.lower() in RESERVED_NAMES or name.lower().startswith(RESERVED_PREFIX):
        raise invalid_property("name", name, "This account name is used by the nodes themselves.")
    return name


def user_settings(name: str, is_admin: bool | None, expiry: datetime | None, password: str | None,
                  ssh_public_key: str | None, now: datetime) -> Json:
    """What the node's agent makes of an AddUser or UpdateUser body (the defaults filled in)."""
    if ssh_public_key is not None:
        check_ssh_public_key(ssh_public_key)
        if len(ssh_public_key.strip().splitlines()) > 1:
            raise invalid_property("sshPublicKey", ssh_public_key[:40], "One key, on one line.")
    if password is not None and (any(c in password for c in "\n\r\0:") or not password):
        raise invalid_property("password", "", "A password may not be empty or contain ':', a line break or NUL.")
    expires = expiry if expiry is not None else now + DEFAULT_LIFETIME
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    if expires <= now:
        raise invalid_property("expiryTime", clock.to_wire(expires), "The expiry time must be in the future.")
    return {"name": name, "isAdmin": bool(is_admin), "expiryTime": clock.to_wire(expires),
            "password": password or None, "sshPublicKey": ssh_public_key or None}


def check_ssh_public_key(key: str) -> None:
    """An OpenSSH public key line (``type base64 [comment]``) whose data names the same type."""
    parts = key.strip().split()
    reason = None
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        reason = "The SSH public key must be in OpenSSH form: '<type> <base64 data> [comment]'."
    else:
        try:
            data = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError):
            data = b""
        length = int.from_bytes(data[:4], "big") if len(data) >= 4 else 0
        if not data or data[4:4 + length].decode("ascii", "replace") != parts[0]:
            reason = "The SSH public key's data is not a key of its type."
    if reason:
        raise invalid_property("sshPublicKey", key[:40], reason)
