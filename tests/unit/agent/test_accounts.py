"""The accounts tasks run as on this host (agent/accounts.py): the parts that need no useradd."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from openbatch.agent.accounts import AccountError, Accounts, Credentials, task_account_name
from openbatch.protocol import RunUser


def test_a_task_account_is_one_per_task_and_node() -> None:
    name = task_account_name("/nodes/n1", "workitems/j/job-1/t")
    assert name.startswith("_azbt") and len(name) == 17
    assert name == task_account_name("/nodes/n1/", "workitems/j/job-1/t")
    assert name != task_account_name("/nodes/n2", "workitems/j/job-1/t")
    assert name != task_account_name("/nodes/n1", "workitems/j/job-1/u")


def test_an_agent_that_is_not_root_runs_non_admin_auto_users_as_itself(tmp_path: Path) -> None:
    accounts = Accounts("pool")
    accounts.is_root = False
    for user in (None, RunUser(scope="task")):
        assert accounts.known(user) and accounts.credentials(user, str(tmp_path), "t") is None
    for user in (RunUser(admin=True), RunUser(name="alice")):
        with pytest.raises(AccountError, match="not as root"):
            accounts.credentials(user, str(tmp_path), "t")


def test_an_unknown_account_fails_whoever_the_agent_is(tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="no user account named 'carol'") as failed:
        Accounts("pool").credentials(RunUser(name="carol", known=False), str(tmp_path), "t")
    assert failed.value.failure()["category"] == "usererror"
    assert failed.value.failure()["code"] == "TaskUserAccountUnavailable"


def test_a_node_directory_other_users_cannot_reach_is_said(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "node").mkdir(parents=True)
    closed.chmod(0o700)
    accounts = Accounts("pool")
    nobody = Credentials("nobody", 65534, 65534, (65534,))
    with pytest.raises(AccountError, match="does not let other users through") as failed:
        accounts._check_reachable(str(closed / "node"), nobody)
    assert dict((d["name"], d["value"]) for d in failed.value.failure()["details"])["Directory"] == str(closed)
    closed.chmod(0o711)
    accounts._check_reachable(str(closed / "node"), nobody)


@pytest.mark.skipif(os.geteuid() != 0, reason="admin tasks run as root only when the agent is root")
def test_admin_auto_users_are_root(tmp_path: Path) -> None:
    accounts = Accounts("pool")
    assert accounts.known(RunUser(admin=True, scope="task"))
    assert accounts.credentials(RunUser(admin=True, scope="task"), str(tmp_path), "t") is None
    assert Accounts.name_of(None) == "root"


def _entry(home: Path) -> pwd.struct_passwd:
    return pwd.struct_passwd(("someone", "x", os.geteuid(), os.getegid(), "", str(home), "/bin/sh"))


def test_ssh_files_are_written_without_following_links(tmp_path: Path) -> None:
    from openbatch.agent.accounts import write_ssh_files

    home = tmp_path / "home"
    home.mkdir()
    write_ssh_files(_entry(home), {"authorized_keys": ("ssh-ed25519 AAAA\n", 0o600)})
    assert (home / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA\n"
    target = tmp_path / "precious"
    target.write_text("keep")
    (home / ".ssh" / "authorized_keys").unlink()
    (home / ".ssh" / "authorized_keys").symlink_to(target)   # planted by the account: replaced, not followed
    write_ssh_files(_entry(home), {"authorized_keys": ("ssh-ed25519 BBBB\n", 0o600)})
    assert target.read_text() == "keep" and not (home / ".ssh" / "authorized_keys").is_symlink()
    other = tmp_path / "elsewhere"
    other.mkdir()
    for child in (home / ".ssh").iterdir():
        child.unlink()
    (home / ".ssh").rmdir()
    (home / ".ssh").symlink_to(other)                        # a linked ~/.ssh is refused
    with pytest.raises(AccountError):
        write_ssh_files(_entry(home), {"authorized_keys": ("x\n", 0o600)})
    assert not list(other.iterdir())
