"""Node users' settings (domain/node_users.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from openbatch.domain.errors import BatchError
from openbatch.domain.node_users import check_name, check_ssh_public_key, user_settings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def _openssh(key) -> str:  # type: ignore[no-untyped-def]
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_defaults_a_day_from_now_and_nothing_else() -> None:
    assert user_settings("ann", None, None, None, None, NOW) == {
        "name": "ann", "isAdmin": False, "expiryTime": "2026-12-07T12:00:00.000000Z", "password": None,
        "sshPublicKey": None}


def test_real_keys_pass() -> None:
    check_ssh_public_key(_openssh(ed25519.Ed25519PrivateKey.generate()) + " me@host")
    check_ssh_public_key(_openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024)))


@pytest.mark.parametrize("key", ["", "ssh-rsa", "ssh-rsa !!!", "ssh-foo AAAA", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA=="])
def test_keys_that_are_not_keys_are_refused(key: str) -> None:
    with pytest.raises(BatchError) as refused:
        check_ssh_public_key(key)
    assert dict(refused.value.values)["PropertyName"] == "sshPublicKey"


@pytest.mark.parametrize("name", ["", "1a", "-a", "a b", "root", "_AZBATCH", "a" * 33])
def test_bad_names(name: str) -> None:
    with pytest.raises(BatchError):
        check_name(name)


def test_past_expiry_and_bad_passwords() -> None:
    for expiry, password in ((NOW - timedelta(seconds=1), None), (None, "a:b"), (None, "a\nb"), (None, "")):
        with pytest.raises(BatchError):
            user_settings("ann", None, expiry, password, None, NOW)
