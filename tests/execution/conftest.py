"""Clients bound to the server with real local compute nodes, and waiting helpers."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from tests.support.live import LiveServer

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _tasks_may_write_here(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Tasks run as their own accounts (``_azbatch``): the markers and logs the tests have them write in
    ``tmp_path`` need a directory every account may write to, as /tmp is."""
    tmp_path.chmod(0o1777)


@pytest.fixture
def batch(live_nodes: LiveServer) -> BatchClient:
    return BatchClient(endpoint=live_nodes.url, credential=AzureNamedKeyCredential(live_nodes.account, live_nodes.key))


def wait_for(what: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, message: str = "") -> T:
    """Poll ``what`` until it returns something truthy (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or what}")
        time.sleep(interval)
