"""Clients for the end-to-end tests: azure-batch 15 and raw REST, both bound to the live server."""

from __future__ import annotations

import itertools
import uuid
from typing import Iterator

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from openbatch.auth.client import SharedKeyAuth
from tests.support.live import LiveServer

API_VERSION = "2024-07-01.20.0"
_counter = itertools.count()


@pytest.fixture
def batch(live: LiveServer) -> BatchClient:
    """The official azure-batch 15.x client (api-version 2025-06-01)."""
    return BatchClient(endpoint=live.url, credential=AzureNamedKeyCredential(live.account, live.key))


@pytest.fixture
def rest(live: LiveServer) -> Iterator[httpx.Client]:
    """A raw REST client signing with Shared Key; add ``params={"api-version": API_VERSION}``."""
    with httpx.Client(base_url=live.url, auth=SharedKeyAuth(live.account, live.key), timeout=30,
                      headers={"user-agent": "openbatch-tests"}) as client:
        yield client


def uid(prefix: str) -> str:
    """A resource id unique within the test run (the live server is shared by many tests)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
