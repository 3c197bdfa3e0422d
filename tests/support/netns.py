"""Hosts that really are apart: a Linux network namespace with its own address, joined to this one by a
veth pair (created by the test run on this machine, removed after it; root and iproute2 needed).

``other_host()`` yields a :class:`Host`: the server listens on ``host.server_ip`` (this side of the
link), a process started with ``host.run(...)`` lives in the namespace and reaches the server only
through the link, which :meth:`Host.cut` takes down and :meth:`Host.heal` brings back.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

_numbers = itertools.count(1)


def netns_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"ob-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", "netns", "exec", namespace, "ip", *args] if namespace else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


@dataclass
class Host:
    name: str        # the namespace
    link: str        # this side's veth
    server_ip: str   # this side's address (the server listens here)
    ip: str          # the other host's address

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the other host."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """The network between the hosts fails (packets are dropped, nothing is closed)."""
        _ip("link", "set", self.link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.link, "up")


@contextmanager
def other_host() -> Iterator[Host]:
    number = next(_numbers)
    tag = f"{os.getpid() % 10000}{number}"
    name, link, peer = f"ob-host-{tag}", f"obh{tag}", f"obn{tag}"
    subnet = f"10.{200 + os.getpid() % 50}.{number % 250}"
    host = Host(name, link, f"{subnet}.1", f"{subnet}.2")
    try:
        _ip("netns", "add", name)
        _ip("link", "add", link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", name)
        _ip("addr", "add", f"{host.server_ip}/30", "dev", link)
        _ip("link", "set", link, "up")
        _ip("addr", "add", f"{host.ip}/30", "dev", peer, namespace=name)
        _ip("link", "set", peer, "up", namespace=name)
        _ip("link", "set", "lo", "up", namespace=name)
        yield host
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", link], capture_output=True)
