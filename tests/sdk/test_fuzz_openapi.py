"""A property-based fuzz of the public API from its OpenAPI (Swagger) document, with schemathesis.

Every operation of the spec gets generated requests (valid and invalid by the schema), signed
with Shared Key as a client would, against the live server on both stores. Whatever the input:
no 5xx (501 only for operations not implemented yet), and every error is a BatchError in JSON,
never plain text. The contract check of tests/conftest.py also validates each response.
Deterministic (derandomized) at a modest example count, so CI runs the same cases every time.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from openbatch.auth.client import SharedKeyAuth
from tests.sdk.conftest import API_VERSION
from tests.support.live import LiveServer
from tests.support.swagger import spec_missing_message, spec_path

EXAMPLES = 12


@pytest.fixture(scope="session")
def operations() -> list[Any]:
    path = spec_path()
    if not path.is_file():
        pytest.skip(spec_missing_message())
    return [result.ok() for result in schemathesis.openapi.from_path(str(path)).get_all_operations()]


def test_no_request_gets_a_server_error(operations: list[Any], live: LiveServer) -> None:
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=live.url, auth=SharedKeyAuth(live.account, live.key), timeout=30,
                      headers={"user-agent": "openbatch-fuzz"}) as client:
        for operation in operations:
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def fuzz(case: Any) -> None:
                problem = _check(client, live.url, case, statuses)
                if problem:
                    failures.append(problem)

            fuzz()
    print("fuzz status counts", live.store_name, dict(statuses))
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:30])
    assert statuses[200] + statuses[201] + statuses[202] + statuses[404] > 50, statuses   # past auth and parsing


def _check(client: httpx.Client, base_url: str, case: Any, statuses: Counter[int]) -> str | None:
    """None if the server's answer to ``case`` is acceptable, else what is wrong with it."""
    case.query = {**(case.query or {}), "api-version": API_VERSION}
    kwargs = case.as_transport_kwargs(base_url=base_url)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items()
               if k.lower() not in ("authorization", "ocp-date", "host", "content-length")}
    content = json.dumps(kwargs["json"]).encode() if "json" in kwargs else kwargs.get("data")
    if isinstance(content, str):
        content = content.encode()
    try:
        response = client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
                                   content=content)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
        return None   # the client itself refuses to send it (a control character in a header, say)
    statuses[response.status_code] += 1
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    if response.status_code >= 500 and response.status_code != 501:
        return f"{where}: {response.text[:300]}"
    if response.status_code >= 400 and case.method.upper() != "HEAD":
        try:
            error = response.json()
        except ValueError:
            return f"{where}: not JSON: {response.text[:300]!r}"
        if not (isinstance(error, dict) and isinstance(error.get("code"), str)
                and (error.get("message") or {}).get("value")):
            return f"{where}: not a BatchError: {error}"
    return None
