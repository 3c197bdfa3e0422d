"""Who a task runs as: userIdentity and the pool's userAccounts (domain/identities.py)."""

from __future__ import annotations

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.identities import check_user_accounts, run_user
from openbatch.protocol import RunUser

ACCOUNTS = [{"name": "Alice", "password": "p", "elevationLevel": "admin",
             "linuxUserConfiguration": {"uid": 2000, "gid": 2001, "sshPrivateKey": "KEY"}},
            {"name": "bob", "password": "q"}]


@pytest.mark.parametrize("identity", [None, {}, {"autoUser": {}}, {"autoUser": {"scope": "pool"}},
                                      {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}])
def test_the_pool_non_admin_auto_user_is_the_default_and_costs_nothing_on_the_wire(identity: dict | None) -> None:
    assert run_user(identity, ACCOUNTS) is None


@pytest.mark.parametrize("auto, label", [({"scope": "task"}, "TaskNonAdmin"),
                                         ({"scope": "task", "elevationLevel": "admin"}, "TaskAdmin"),
                                         ({"elevationLevel": "admin"}, "PoolAdmin")])
def test_auto_users(auto: dict, label: str) -> None:
    user = run_user({"autoUser": auto}, [])
    assert user is not None and user.label == label and user.name is None


def test_named_accounts_carry_their_settings_and_match_case_insensitively() -> None:
    user = run_user({"username": "alice"}, ACCOUNTS)
    assert user == RunUser(name="Alice", admin=True, password="p", uid=2000, gid=2001, sshPrivateKey="KEY")
    assert user.label == "Alice"
    assert run_user({"username": "bob"}, ACCOUNTS) == RunUser(name="bob", password="q")


def test_an_account_the_pool_lacks_is_sent_as_unknown() -> None:
    assert run_user({"username": "carol"}, ACCOUNTS) == RunUser(name="carol", known=False)
    assert run_user({"username": "carol"}, None) == RunUser(name="carol", known=False)


@pytest.mark.parametrize("accounts, property_name", [
    ([{"name": "a", "password": "p"}, {"name": "A", "password": "p"}], "userAccounts/1/name"),
    ([{"name": "-a", "password": "p"}], "userAccounts/0/name"),
    ([{"name": "a" * 21, "password": "p"}], "userAccounts/0/name"),
    ([{"name": "Root", "password": "p"}], "userAccounts/0/name"),
    ([{"name": "a", "password": ""}], "userAccounts/0/password"),
    ([{"name": "a", "password": "p", "linuxUserConfiguration": {"gid": 5}}], "userAccounts/0/linuxUserConfiguration/uid"),
    ([{"name": "a", "password": "p", "linuxUserConfiguration": {"uid": 0, "gid": 0}}],
     "userAccounts/0/linuxUserConfiguration/uid"),
])
def test_bad_accounts_are_named(accounts: list[dict], property_name: str) -> None:
    with pytest.raises(BatchError) as refused:
        check_user_accounts(accounts)
    assert refused.value.code == "InvalidPropertyValue"
    assert dict(refused.value.values)["PropertyName"] == property_name


def test_good_accounts_pass() -> None:
    check_user_accounts(ACCOUNTS)
    check_user_accounts(None)
    check_user_accounts([{"name": "a.b-c_d", "password": "p"}])
