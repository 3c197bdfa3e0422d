"""ComputeNode AddUser, UpdateUser and DeleteUser make real accounts on the node's host (azure-batch 15.1)."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from azure.batch import BatchClient, models as m
from azure.batch.models._models import BatchNodeReimageOptions  # not exported by 15.1
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.execution.conftest import wait_for
from tests.execution.test_node_operations import _pool
from tests.sdk.test_jobs import error_values
from tests.sdk.conftest import uid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="node users are real accounts: the agent must be root")


def _public_key() -> str:
    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " someone@laptop"


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _expiry_day(name: str) -> str:
    """The account's expiry as chage shows it (e.g. 'Dec 08, 2026')."""
    out = subprocess.run(["chage", "-l", name], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Account expires"))


def _error(call) -> HttpResponseError:  # type: ignore[no-untyped-def]
    with pytest.raises(HttpResponseError) as raised:
        call()
    return raised.value


def test_add_update_delete_a_node_user(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    name, key = uid("u")[:16], _public_key()
    expiry = datetime.now(timezone.utc) + timedelta(days=3)
    batch.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(
        name=name, is_admin=True, expiry_time=expiry, password="Pa55-word", ssh_public_key=key))
    entry = _account(name)
    assert entry is not None and entry.pw_shell == "/bin/bash" and os.path.isdir(entry.pw_dir)
    assert name in grp.getgrnam("_azbatchsudogrp").gr_mem
    keys = os.path.join(entry.pw_dir, ".ssh", "authorized_keys")
    assert open(keys).read() == key + "\n" and os.stat(keys).st_uid == entry.pw_uid
    # (a Linux account expires on a day: the one after the expiry's, so it works through the expiry time)
    assert _expiry_day(name) == (expiry + timedelta(days=1)).strftime("%b %d, %Y")
    assert subprocess.run(["su", "-s", "/bin/sh", name, "-c", "id -un"], capture_output=True, text=True
                          ).stdout.strip() == name

    again = _error(lambda: batch.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(name=name)))
    assert again.status_code == 409 and again.error.code == "NodeUserExists"
    taken = _error(lambda: batch.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(name="daemon")))
    assert taken.status_code == 409 and taken.error.code == "NodeUserExists"

    batch.replace_node_user(pool_id, node_id, name, m.BatchNodeUserReplaceOptions(password="Other-pa55"))
    assert not os.path.exists(keys)                       # left out: removed
    after_tomorrow = datetime.now(timezone.utc) + timedelta(days=2)
    assert _expiry_day(name) in {after_tomorrow.strftime("%b %d, %Y"),
                                 (after_tomorrow + timedelta(hours=1)).strftime("%b %d, %Y")}
    assert name in grp.getgrnam("_azbatchsudogrp").gr_mem   # an update keeps the account's rights

    batch.delete_node_user(pool_id, node_id, name)
    assert _account(name) is None and not os.path.exists(entry.pw_dir)
    gone = _error(lambda: batch.delete_node_user(pool_id, node_id, name))
    assert gone.status_code == 404 and gone.error.code == "NodeUserNotFound"
    foreign = _error(lambda: batch.delete_node_user(pool_id, node_id, "daemon"))   # never another account
    assert foreign.status_code == 404 and _account("daemon") is not None
    missing = _error(lambda: batch.replace_node_user(pool_id, node_id, name, m.BatchNodeUserReplaceOptions()))
    assert missing.status_code == 404 and missing.error.code == "NodeUserNotFound"


def test_node_users_leave_with_a_reimage(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    name = uid("u")[:16]
    batch.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(name=name, ssh_public_key=_public_key()))
    assert _account(name) is not None
    batch.begin_reimage_node(pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"),
                             polling_interval=0)
    wait_for(lambda: _account(name) is None, message="the node user gone with the reimage")
    wait_for(lambda: batch.get_node(pool_id, node_id).state == "idle", message="the node back")


@pytest.mark.parametrize("body, property_name", [
    ({"name": "-x"}, "name"),
    ({"name": "_azbatch"}, "name"),
    ({"name": "x", "sshPublicKey": "not a key"}, "sshPublicKey"),
    ({"name": "x", "sshPublicKey": "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA=="}, "sshPublicKey"),
    ({"name": "x", "password": "a:b"}, "password"),
    ({"name": "x", "expiryTime": "2020-01-01T00:00:00Z"}, "expiryTime"),
])
def test_bad_users_are_refused_before_the_node_is_asked(batch: BatchClient, body: dict, property_name: str) -> None:
    pool_id, [node_id] = _pool(batch)
    refused = _error(lambda: batch.create_node_user(pool_id, node_id, body))
    assert refused.status_code == 400 and refused.error.code == "InvalidPropertyValue"
    assert error_values(refused)["PropertyName"] == property_name


def test_a_node_that_is_not_up_has_no_users_to_manage(batch: BatchClient) -> None:
    pool_id, [node_id] = _pool(batch)
    batch.disable_node_scheduling(pool_id, node_id, m.BatchNodeDisableSchedulingOptions(
        node_disable_scheduling_option="requeue"))   # offline
    refused = _error(lambda: batch.create_node_user(pool_id, node_id, m.BatchNodeUserCreateOptions(name="x1")))
    assert refused.status_code == 409 and refused.error.code == "OperationNotValidOnNode"
    missing = _error(lambda: batch.create_node_user(pool_id, "tvm-none", m.BatchNodeUserCreateOptions(name="x1")))
    assert missing.status_code == 404 and missing.error.code == "NodeNotFound"
