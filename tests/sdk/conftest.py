"""Clients for the end-to-end tests: azure-batch 15 and raw REST, both bound to the live server."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any, Callable, Iterator

import httpx
import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

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


def batch_error(exc: HttpResponseError) -> dict:
    """The BatchError body of a failed response ({} for a HEAD, which has none)."""
    try:
        exc.response.read()  # streamed downloads have not read their body yet
    except Exception:  # noqa: BLE001 - already read or closed
        pass
    text = exc.response.text()
    return json.loads(text) if text else {}


def error_values(error: dict) -> dict[str, str]:
    return {v["key"]: v["value"] for v in error.get("values", [])}


def expect_failure(call: Callable[[], Any], status: int, code: str | None) -> dict:
    """Run ``call`` (draining a returned iterator) and check the error; ``code`` None for a HEAD."""
    with pytest.raises(HttpResponseError) as info:
        result = call()
        if hasattr(result, "__next__"):
            b"".join(result)
    exc = info.value
    error = batch_error(exc)
    assert exc.status_code == status, f"expected {status} {code}, got {exc.status_code} {error}"
    if code is not None:
        assert error.get("code") == code, f"expected code {code}, got {error}"
    return error


def expect_rest_failure(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, f"expected {status} {code}, got {response.status_code} {response.text}"
    error = response.json()
    assert error["code"] == code, error
    assert error["message"]["lang"] == "en-US" and error["message"]["value"], error
    return error


def uid(prefix: str) -> str:
    """A resource id unique within the test run (the live server is shared by many tests)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
