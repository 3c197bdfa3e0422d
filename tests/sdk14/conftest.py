"""The msrest-based azure-batch 14.2 client bound to the live server (runs in .venv-sdk14)."""

from __future__ import annotations

import itertools
import uuid

import pytest
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials

from tests.support.live import LiveServer

_counter = itertools.count()


@pytest.fixture
def client(live: LiveServer) -> BatchServiceClient:
    """azure-batch 14.2 (api-version 2024-02-01.19.0), Shared Key, plain http."""
    return BatchServiceClient(SharedKeyCredentials(live.account, live.key), batch_url=live.url)


def uid(prefix: str) -> str:
    """A resource id unique within the test run (the live server is shared by many tests)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
