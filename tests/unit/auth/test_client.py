"""SharedKeyAuth signs httpx requests so that verify() accepts them."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import httpx
import pytest

from openbatch.auth.client import SharedKeyAuth
from openbatch.auth.shared_key import SignedRequest, parse_http_date, verify
from openbatch.domain.errors import BatchError

ACCOUNT = "testaccount"
KEY_B64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
KEYS = {ACCOUNT: base64.b64decode(KEY_B64)}


def _as_server_sees(request: httpx.Request) -> SignedRequest:
    path, _, query = request.url.raw_path.decode("ascii").partition("?")
    return SignedRequest(
        method=request.method,
        raw_path=path,
        raw_query=query,
        headers=request.headers.multi_items(),
        body_length=len(request.content),
    )


def _client(seen: list[SignedRequest]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(_as_server_sees(request))
        when = parse_http_date(request.headers["ocp-date"])
        assert when is not None
        try:
            return httpx.Response(200, json={"account": verify(seen[-1], KEYS, when)})
        except BatchError as err:
            return httpx.Response(err.status, json=err.to_wire())

    return httpx.Client(
        base_url="http://127.0.0.1:8080",
        transport=httpx.MockTransport(handler),
        auth=SharedKeyAuth(ACCOUNT, KEY_B64),
    )


@pytest.mark.parametrize(
    "method,url,kwargs",
    [
        ("GET", "/jobs/job-1/taskcounts", {"params": {"api-version": "2025-06-01", "timeOut": 30}}),
        ("GET", "/jobs", {"params": {"api-version": "2025-06-01", "$filter": "state eq 'active'"}}),
        ("HEAD", "/jobs/job-1/tasks/t0/files/wd%2Fout.txt?api-version=2025-06-01", {}),
        (
            "GET",
            "/jobs/job-1/tasks/t0/files/wd%2Fout.txt?api-version=2025-06-01",
            {"headers": {"ocp-range": "bytes=0-4"}},
        ),
        ("POST", "/jobs?api-version=2025-06-01", {"json": {"id": "job-1", "poolInfo": {"poolId": "p"}}}),
        ("POST", "/jobs/job-1/enable?api-version=2025-06-01", {}),
        ("DELETE", "/jobs/job-1?api-version=2025-06-01", {}),
    ],
)
def test_signed_request_verifies(method: str, url: str, kwargs: dict) -> None:
    seen: list[SignedRequest] = []
    with _client(seen) as client:
        response = client.request(method, url, **kwargs)
    assert response.status_code == 200, response.text
    if method != "HEAD":
        assert response.json() == {"account": ACCOUNT}
    assert any(k.lower() == "authorization" for k, _ in seen[0].headers)
    assert "%2F" in seen[0].raw_path or "files" not in seen[0].raw_path


def test_existing_ocp_date_is_kept() -> None:
    seen: list[SignedRequest] = []
    stamp = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with _client(seen) as client:
        response = client.get("/jobs", params={"api-version": "2025-06-01"}, headers={"ocp-date": stamp})
    assert response.status_code == 200
    assert dict(seen[0].headers)["ocp-date"] == stamp


def test_ocp_date_added_and_fresh() -> None:
    seen: list[SignedRequest] = []
    with _client(seen) as client:
        client.get("/jobs")
    when = parse_http_date(dict(seen[0].headers)["ocp-date"])
    assert when is not None
    assert verify(seen[0], KEYS, datetime.now(timezone.utc)) == ACCOUNT


def test_wrong_key_is_rejected() -> None:
    seen: list[SignedRequest] = []
    with _client(seen) as client:
        client.auth = SharedKeyAuth(ACCOUNT, base64.b64encode(b"y" * 32).decode())
        response = client.get("/jobs", params={"api-version": "2025-06-01"})
    assert response.status_code == 403
    assert response.json()["code"] == "AuthenticationFailed"
