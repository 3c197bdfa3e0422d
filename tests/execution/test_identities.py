"""Tasks run as the Unix accounts Azure's Linux nodes would use, on real local nodes (azure-batch 15.1).

The agents here run as root (as in CI), so every identity is a real account of this host:
``_azbatch`` by default, an account of the task's own for task scope, root for admin, and
the pool's named accounts with their settings.
"""

from __future__ import annotations

import grp
import os
import pwd

import pytest
from azure.batch import BatchClient, models as m
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.execution.conftest import wait_for
from tests.sdk.conftest import uid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="real task accounts need an agent running as root")

IMAGE = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
    node_agent_sku_id="batch.node.ubuntu 22.04")
#: What a task prints about itself: its user, its groups, the owner of its working directory and its identity.
WHOAMI = ("/bin/sh -c 'echo $(id -un) $(id -u) [$(id -Gn | tr \\\\040 ,)] $(stat -c %U .) $AZ_BATCH_TASK_USER "
          "$AZ_BATCH_TASK_USER_IDENTITY'")


def _auto(scope: str, elevation: str) -> m.UserIdentity:
    return m.UserIdentity(auto_user=m.AutoUserSpecification(scope=scope, elevation_level=elevation))


def _stdout(batch: BatchClient, job_id: str, task_id: str) -> str:
    return b"".join(batch.download_task_file(job_id, task_id, "stdout.txt")).decode()


def _key() -> str:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


def _free_id() -> int:
    """A uid that is also a free gid on this host."""
    taken = {e.pw_uid for e in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return next(i for i in range(42000, 60000, 7) if i not in taken and i + 1 not in taken)


def _completed(batch: BatchClient, job_id: str, count: int) -> list[m.BatchTask]:
    return wait_for(lambda: (tasks := list(batch.list_tasks(job_id))) and len(tasks) == count and all(
        t.state == "completed" for t in tasks) and tasks, timeout=60, message="tasks completed")


def test_every_identity_runs_as_its_account(batch: BatchClient) -> None:
    pool_id, job_id = uid("pool"), uid("job")
    alice, bob = uid("al")[:16], uid("bo")[:16]
    bob_uid = _free_id()
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=1, task_slots_per_node=4,
        virtual_machine_configuration=IMAGE,
        user_accounts=[
            m.UserAccount(name=alice, password="Alice-secret-1"),
            m.UserAccount(name=bob, password="Bob-secret-1", elevation_level="admin",
                          linux_user_configuration=m.LinuxUserConfiguration(uid=bob_uid, gid=bob_uid + 1,
                                                                            ssh_private_key=_key())),
        ],
        start_task=m.BatchStartTask(command_line=WHOAMI, user_identity=_auto("pool", "admin"))))
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    tasks = {
        "default": None,
        "pool-nonadmin": _auto("pool", "nonadmin"),
        "task-nonadmin": _auto("task", "nonadmin"),
        "task-admin": _auto("task", "admin"),
        "alice": m.UserIdentity(username=alice),
        "bob": m.UserIdentity(username=bob.upper()),   # names are matched as Azure does: case-insensitively
    }
    for task_id, identity in tasks.items():
        batch.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=WHOAMI, user_identity=identity))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="denied", command_line="/bin/sh -c 'touch /etc/openbatch-denied-$$'"))
    # the task directory is root's and sticky: the task adds files there, but what root writes there (its
    # stdout.txt, stderr.txt) it can neither remove nor swap for a link
    batch.create_task(job_id, m.BatchTaskCreateOptions(id="tamper", command_line="/bin/sh -c 'echo mine > ../mine.txt "
                                                       "&& rm -f ../stderr.txt; ln -sf /etc/passwd ../stdout.txt; "
                                                       "test -f ../stderr.txt && test ! -L ../stdout.txt && exit 7'"))
    for task in _completed(batch, job_id, len(tasks) + 2):
        expected = {"denied": 1, "tamper": 7}.get(task.id, 0)
        assert task.execution_info.exit_code == expected, task.id
    out = {task_id: _stdout(batch, job_id, task_id).split() for task_id in tasks}

    assert out["default"][0] == "_azbatch" and out["default"][3:] == ["_azbatch", "_azbatch", "PoolNonAdmin"]
    assert out["pool-nonadmin"] == out["default"]
    task_user = out["task-nonadmin"][0]
    assert task_user.startswith("_azbt") and int(out["task-nonadmin"][1]) != 0
    assert out["task-nonadmin"][3:] == [task_user, task_user, "TaskNonAdmin"]
    assert out["task-admin"][0] == "root" and out["task-admin"][3:] == ["root", "root", "TaskAdmin"]
    assert out["alice"][0] == alice and out["alice"][4:] == [alice, alice]
    assert out["bob"][:2] == [bob, str(bob_uid)] and "_azbatchsudogrp" in out["bob"][2] and out["bob"][5] == bob
    start = b"".join(batch.download_node_file(
        pool_id, batch.get_task(job_id, "default").node_info.node_id, "startup/stdout.txt")).decode().split()
    assert start[0] == "root" and start[-1] == "PoolAdmin"

    entry = pwd.getpwnam(bob)
    assert entry.pw_gid == bob_uid + 1 and bob in grp.getgrnam("_azbatchsudogrp").gr_mem
    keys = os.path.join(entry.pw_dir, ".ssh")
    assert os.stat(os.path.join(keys, "id_rsa")).st_uid == bob_uid
    assert open(os.path.join(keys, "authorized_keys")).read().startswith("ssh-ed25519 ")

    batch.delete_task(job_id, "task-nonadmin")   # its directory goes, and its account with it
    wait_for(lambda: task_user not in {e.pw_name for e in pwd.getpwall()}, message="task account deleted")
    batch.begin_delete_pool(pool_id, polling_interval=0)   # the pool's named accounts leave the host with its node
    wait_for(lambda: not {alice, bob} & {e.pw_name for e in pwd.getpwall()}, message="named accounts deleted")


def test_an_unknown_or_foreign_account_fails_the_task(batch: BatchClient) -> None:
    pool_id, job_id = uid("pool"), uid("job")
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", target_dedicated_nodes=1, virtual_machine_configuration=IMAGE,
        user_accounts=[m.UserAccount(name="daemon", password="x-secret-1")]))   # a system account of the host
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="unknown", command_line="/bin/true", user_identity=m.UserIdentity(username="nobody-like-this")))
    batch.create_task(job_id, m.BatchTaskCreateOptions(
        id="foreign", command_line="/bin/true", user_identity=m.UserIdentity(username="daemon")))
    for task in _completed(batch, job_id, 2):
        failure = task.execution_info.failure_info
        assert task.execution_info.result == "failure" and task.execution_info.exit_code is None
        assert failure.category == "usererror" and failure.code == "TaskUserAccountUnavailable"
        assert ("no user account named" if task.id == "unknown" else "did not create it") in failure.message
    assert pwd.getpwnam("daemon").pw_gecos != "openbatch pool " + pool_id   # left alone


@pytest.mark.parametrize("accounts, reason", [
    ([{"name": "x", "password": "p"}, {"name": "X", "password": "q"}], "same name"),
    ([{"name": "1abc", "password": "p"}], "Linux node"),
    ([{"name": "_azbatch", "password": "p"}], "nodes themselves"),
    ([{"name": "x", "password": "p", "linuxUserConfiguration": {"uid": 2000}}], "together"),
    ([{"name": "x", "password": ""}], "password"),
    ([{"name": "x", "password": "p\nroot:owned"}], "line break"),
    ([{"name": "_azbatchsudogrp", "password": "p"}], "nodes themselves"),
])
def test_bad_user_accounts_are_refused(batch: BatchClient, accounts: list[dict], reason: str) -> None:
    body = {"id": uid("pool"), "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0,
            "virtualMachineConfiguration": IMAGE.as_dict(), "userAccounts": accounts}
    with pytest.raises(HttpResponseError) as refused:
        batch.create_pool(body)
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidPropertyValue"
    assert reason in str(refused.value)
    assert not [p for p in batch.list_pools() if p.id == body["id"]]


def test_both_username_and_auto_user_are_refused(batch: BatchClient) -> None:
    job_id = uid("job")
    batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="none")))
    with pytest.raises(HttpResponseError) as refused:
        batch.create_task(job_id, {"id": "t", "commandLine": "/bin/true", "userIdentity": {
            "username": "a", "autoUser": {"scope": "task"}}})
    assert refused.value.status_code == 400 and "mutually exclusive" in str(refused.value)
