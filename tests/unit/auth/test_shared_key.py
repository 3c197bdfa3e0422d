"""Shared Key verification against captured real-client requests, the docs, and sign()."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from openbatch.auth.shared_key import SignedRequest, parse_http_date, sign, string_to_sign_variants, verify
from openbatch.domain.errors import BatchError

CAPTURES = Path("/work/shared/reference/captures")
ACCOUNT = "testaccount"
KEY_B64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
KEYS = {ACCOUNT: base64.b64decode(KEY_B64)}
NOW = datetime(2026, 11, 21, 10, 31, 56, tzinfo=timezone.utc)


def _load() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for i, line in enumerate(path.read_text().splitlines()):
            if line.strip():
                out.append((f"{path.stem}:{i}", json.loads(line)))
    return out


CAPTURED = _load()


def _request(cap: dict, **changes) -> SignedRequest:
    path, _, query = cap["path"].partition("?")
    fields = dict(
        method=cap["method"],
        raw_path=path,
        raw_query=query,
        headers=[tuple(h) for h in cap["headers"]],
        body_length=len(cap["body"].encode("utf-8")),
    )
    fields.update(changes)
    return SignedRequest(**fields)


def _header(req: SignedRequest, name: str) -> str:
    return next(v for k, v in req.headers if k.lower() == name)


def _with_header(req: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = [(k, v) for k, v in req.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return SignedRequest(req.method, req.raw_path, req.raw_query, headers, req.body_length)


def _now(req: SignedRequest) -> datetime:
    when = parse_http_date(_header(req, "ocp-date"))
    assert when is not None
    return when


def _hmac(sts: str) -> str:
    return base64.b64encode(hmac.digest(KEYS[ACCOUNT], sts.encode(), "sha256")).decode()


def _expect(code: str, status: int, fn, *args, **kwargs) -> BatchError:
    with pytest.raises(BatchError) as info:
        fn(*args, **kwargs)
    assert (info.value.code, info.value.status) == (code, status), info.value
    return info.value


def _signed(method: str, url: str, headers: dict[str, str], body_length: int = 0) -> SignedRequest:
    """A request as the server would see it after sign() on the client."""
    headers = dict(headers)
    headers["Authorization"] = sign(method, url, headers, ACCOUNT, KEY_B64)
    parts = urlsplit(url)
    return SignedRequest(method, parts.path, parts.query, list(headers.items()), body_length)


def _base_headers(now: datetime = NOW) -> dict[str, str]:
    return {"ocp-date": format_datetime(now, usegmt=True), "client-request-id": "abc"}


def _by_name(name: str) -> dict:
    return dict(CAPTURED)[name]


# ------------------------------------------------------------------ captures


@pytest.mark.parametrize("name,cap", CAPTURED, ids=[n for n, _ in CAPTURED])
def test_every_capture_verifies(name: str, cap: dict) -> None:
    req = _request(cap)
    assert verify(req, KEYS, _now(req)) == ACCOUNT


@pytest.mark.parametrize("name,cap", CAPTURED, ids=[n for n, _ in CAPTURED])
def test_capture_matches_early(name: str, cap: dict) -> None:
    """The canonical form matches first, except a capitalised query name (15.x timeOut): second."""
    req = _request(cap)
    sig = _header(req, "authorization").split(":", 1)[1]
    variants = string_to_sign_variants(req, ACCOUNT)
    index = [_hmac(v) for v in variants].index(sig)
    assert index == (1 if req.raw_query != req.raw_query.lower() else 0)
    # The capture's own string-to-sign (the SDK algorithm) is always among the variants.
    assert cap["string_to_sign"] in variants


def test_js_bodiless_delete_signs_empty_content_length() -> None:
    req = _request(_by_name("capture_js_nobody:0"))
    sig = _header(req, "authorization").split(":", 1)[1]
    assert string_to_sign_variants(req, ACCOUNT)[0].startswith("DELETE\n\n\n\n")
    assert _hmac(string_to_sign_variants(req, ACCOUNT)[0]) == sig


@pytest.mark.parametrize("name,cap", CAPTURED, ids=[n for n, _ in CAPTURED])
def test_sign_reproduces_python_captures(name: str, cap: dict) -> None:
    headers = {k: v for k, v in cap["headers"] if k.lower() != "authorization"}
    auth = next(v for k, v in cap["headers"] if k.lower() == "authorization")
    produced = sign(cap["method"], "http://127.0.0.1:8080" + cap["path"], headers, ACCOUNT, KEY_B64)
    if name == "capture_js_nobody:0":  # JS signs "" where azure-batch 15.x signs "0"
        assert produced != auth
    else:
        assert produced == auth


# ------------------------------------------------------------------ the docs example


def test_docs_example_is_the_canonical_variant() -> None:
    req = SignedRequest(
        method="GET",
        raw_path="/jobs",
        raw_query="api-version=2014-01-01.1.0&timeout=20",
        headers=[("ocp-date", "Tue, 29 Jul 2014 21:49:13 GMT"), ("Host", "myaccount.batch.core.windows.net")],
        body_length=0,
    )
    assert string_to_sign_variants(req, "myaccount")[0] == (
        "GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:Tue, 29 Jul 2014 21:49:13 GMT\n/myaccount/jobs"
        "\napi-version:2014-01-01.1.0\ntimeout:20"
    )


def test_docs_form_lowercases_and_joins_multiple_values() -> None:
    req = SignedRequest("GET", "/jobs", "B=2&a=x%20y&B=1&empty=", [("ocp-date", "x")], 0)
    variants = string_to_sign_variants(req, "acct")
    assert variants[0].endswith("/acct/jobs\na:x y\nb:1,2\nempty:")
    assert any(v.endswith("/acct/jobs\nB:2\na:x y") for v in variants)  # azure-batch parse_qs form
    assert len(variants) == len(set(variants))


def test_variants_are_few_for_plain_get() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    assert len(string_to_sign_variants(req, ACCOUNT)) == 2  # Content-Length "" and "0"


# ------------------------------------------------------------------ tampering


@pytest.fixture
def post_cap() -> dict:
    return _by_name("capture_sdk14:4")  # POST /jobs with a 201-byte body


def test_tampered_path(post_cap: dict) -> None:
    req = _request(post_cap, raw_path="/jobs/other")
    err = _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))
    assert dict(err.values)["AuthenticationErrorDetail"]


def test_tampered_query(post_cap: dict) -> None:
    req = _request(post_cap, raw_query=post_cap["path"].partition("?")[2] + "&timeout=5")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_query_value() -> None:
    req = _request(_by_name("capture_sdk14:1"))
    req = _request(_by_name("capture_sdk14:1"), raw_query=req.raw_query.replace("timeout=30", "timeout=31"))
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_ocp_header() -> None:
    req = _request(_by_name("capture_files:1"))
    req = _with_header(req, "ocp-range", "bytes=0-999")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_added_ocp_header() -> None:
    req = _with_header(_request(_by_name("capture_sdk15:0")), "ocp-range", "bytes=0-1")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_content_type(post_cap: dict) -> None:
    req = _with_header(_request(post_cap), "content-type", "text/plain")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_body_length(post_cap: dict) -> None:
    req = _with_header(_request(post_cap, body_length=300), "Content-Length", "300")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_method() -> None:
    req = _request(_by_name("capture_delete_py:0"), method="POST")
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))


def test_tampered_ocp_date_fails_signature() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    later = _now(req) + timedelta(seconds=1)
    req = _with_header(req, "ocp-date", format_datetime(later, usegmt=True))
    _expect("AuthenticationFailed", 403, verify, req, KEYS, later)


def test_mismatch_never_reveals_expected_signature() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    good = _header(req, "authorization")
    bad = good[:-8] + "AAAAAAA="
    tampered = _with_header(req, "Authorization", bad)
    err = _expect("AuthenticationFailed", 403, verify, tampered, KEYS, _now(req))
    text = err.message + repr(err.values)
    assert good.split(":", 1)[1] not in text
    assert all(_hmac(v) not in text for v in string_to_sign_variants(req, ACCOUNT))


# ------------------------------------------------------------------ dates


def test_stale_date_rejected() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    err = _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req) + timedelta(minutes=16))
    assert "older than 15 minutes" in dict(err.values)["AuthenticationErrorDetail"]


def test_future_date_within_window_accepted() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    assert verify(req, KEYS, _now(req) - timedelta(minutes=14)) == ACCOUNT
    assert verify(req, KEYS, _now(req) + timedelta(minutes=14, seconds=59)) == ACCOUNT


def test_future_date_beyond_window_rejected() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req) - timedelta(minutes=16))


def test_naive_now_is_utc() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    assert verify(req, KEYS, _now(req).replace(tzinfo=None)) == ACCOUNT


def test_custom_max_age() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    later = _now(req) + timedelta(minutes=2)
    _expect("AuthenticationFailed", 403, verify, req, KEYS, later, timedelta(minutes=1))


def test_missing_dates_rejected() -> None:
    req = _with_header(_request(_by_name("capture_sdk15:0")), "ocp-date", None)
    _expect("AuthenticationFailed", 403, verify, req, KEYS, NOW)


def test_unparseable_date_rejected() -> None:
    headers = _base_headers()
    headers["ocp-date"] = "2026-11-21T10:31:56Z"
    req = _signed("GET", "http://h/jobs?api-version=2025-06-01", headers)
    err = _expect("AuthenticationFailed", 403, verify, req, KEYS, NOW)
    assert "RFC 1123" in dict(err.values)["AuthenticationErrorDetail"]


def test_date_header_alone_is_signed_in_date_slot() -> None:
    req = _signed("GET", "http://h/jobs?api-version=2025-06-01", {"Date": format_datetime(NOW, usegmt=True)})
    assert verify(req, KEYS, NOW) == ACCOUNT
    assert f"\n\n{format_datetime(NOW, usegmt=True)}\n" in string_to_sign_variants(req, ACCOUNT)[0]


def test_ocp_date_wins_over_date() -> None:
    headers = _base_headers()
    headers["Date"] = format_datetime(NOW - timedelta(hours=2), usegmt=True)
    req = _signed("GET", "http://h/jobs?api-version=2025-06-01", headers)
    assert verify(req, KEYS, NOW) == ACCOUNT  # azure-batch signs Date in its slot: a later variant
    # Freshness is judged on ocp-date, so a clock matching only the Date header fails.
    _expect("AuthenticationFailed", 403, verify, req, KEYS, NOW - timedelta(hours=2))


# ------------------------------------------------------------------ malformed Authorization


def test_missing_authorization_is_403() -> None:
    req = _with_header(_request(_by_name("capture_sdk15:0")), "Authorization", None)
    err = _expect("AuthenticationFailed", 403, verify, req, KEYS, _now(req))
    assert err.message.startswith("Server failed to authenticate the request.")
    assert "Authorization" in dict(err.values)["AuthenticationErrorDetail"]


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "SharedKeyLite testaccount:abc=",
        "SharedKey",
        "SharedKey testaccount",
        "SharedKey :B8+a0mx2sIHVKgYXm2TKlPYW1ifauitprxTmUxRvujo=",
        "SharedKey testaccount:",
        "SharedKey testaccount:not*base64!",
        "SharedKey testaccount:B8+a0mx2sIHVKgYXm2TKlPYW1ifauitprxTmUxRvujo",  # missing padding
        "testaccount:B8+a0mx2sIHVKgYXm2TKlPYW1ifauitprxTmUxRvujo=",
    ],
)
def test_malformed_authorization_is_400(value: str) -> None:
    req = _with_header(_request(_by_name("capture_sdk15:0")), "Authorization", value)
    err = _expect("InvalidAuthenticationInfo", 400, verify, req, KEYS, _now(req))
    assert dict(err.values)["AuthenticationErrorDetail"]


def test_bearer_token_is_400_shared_key_only() -> None:
    req = _with_header(_request(_by_name("capture_sdk15:0")), "Authorization", "Bearer eyJhbGciOi.x.y")
    err = _expect("InvalidAuthenticationInfo", 400, verify, req, KEYS, _now(req))
    assert "Shared Key" in dict(err.values)["AuthenticationErrorDetail"]


def test_duplicate_authorization_is_400() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    req = SignedRequest(req.method, req.raw_path, req.raw_query, [*req.headers, ("authorization", "x")], 0)
    _expect("InvalidAuthenticationInfo", 400, verify, req, KEYS, _now(req))


def test_unknown_account_is_403() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    err = _expect("AuthenticationFailed", 403, verify, req, {"other": b"k" * 32}, _now(req))
    assert "testaccount" in dict(err.values)["AuthenticationErrorDetail"]


def test_wrong_key_is_403() -> None:
    req = _request(_by_name("capture_sdk15:0"))
    _expect("AuthenticationFailed", 403, verify, req, {ACCOUNT: b"x" * 32}, _now(req))


def test_scheme_case_and_account_case_tolerated() -> None:
    headers = _base_headers()
    url = "http://h/jobs?api-version=2025-06-01"
    auth = sign("GET", url, headers, "TestAccount", KEY_B64)
    headers["Authorization"] = auth.replace("SharedKey", "sharedkey")
    req = SignedRequest("GET", "/jobs", "api-version=2025-06-01", list(headers.items()), 0)
    assert verify(req, KEYS, NOW) == ACCOUNT


# ------------------------------------------------------------------ sign/verify round trips

URLS = [
    "http://127.0.0.1:8080/jobs",
    "http://127.0.0.1:8080/jobs/job-1?api-version=2025-06-01",
    "http://127.0.0.1:8080/jobs/job-1/taskcounts?api-version=2025-06-01&timeOut=30",
    "http://127.0.0.1:8080/jobs/job-1/tasks/t0/files/wd%2Fout.txt?api-version=2025-06-01&timeOut=30",
    "http://127.0.0.1:8080/jobs?api-version=2025-06-01&%24filter=startswith(id%2C%27a%20b%27)&maxresults=10",
    "http://127.0.0.1:8080/jobs?api-version=2025-06-01&$select=id,state&empty=",
]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "HEAD"])
@pytest.mark.parametrize("url", URLS)
def test_sign_verify_round_trip(method: str, url: str) -> None:
    headers = _base_headers()
    req = _signed(method, url, headers)
    assert verify(req, KEYS, NOW) == ACCOUNT


@pytest.mark.parametrize("url", URLS)
def test_round_trip_with_body(url: str) -> None:
    headers = _base_headers()
    headers.update({"Content-Type": "application/json; odata=minimalmetadata", "Content-Length": "48"})
    req = _signed("POST", url, headers, body_length=48)
    assert verify(req, KEYS, NOW) == ACCOUNT
    _expect("AuthenticationFailed", 403, verify, _with_header(req, "Content-Length", "49"), KEYS, NOW)


def test_round_trip_encoded_path_is_not_decoded() -> None:
    url = "http://h/jobs/job-1/tasks/t0/files/wd%2Fout.txt?api-version=2025-06-01"
    req = _signed("GET", url, _base_headers())
    assert "/testaccount/jobs/job-1/tasks/t0/files/wd%2Fout.txt\n" in string_to_sign_variants(req, ACCOUNT)[0]
    decoded = SignedRequest("GET", "/jobs/job-1/tasks/t0/files/wd/out.txt", req.raw_query, req.headers, 0)
    _expect("AuthenticationFailed", 403, verify, decoded, KEYS, NOW)


def test_round_trip_plus_in_query() -> None:
    # parse_qs turns '+' into a space: the canonical (docs) form must agree with it.
    url = "http://h/jobs?api-version=2025-06-01&%24filter=state+eq+%27active%27"
    req = _signed("GET", url, _base_headers())
    assert verify(req, KEYS, NOW) == ACCOUNT
    assert "\n$filter:state eq 'active'" in string_to_sign_variants(req, ACCOUNT)[0]


def test_sign_matches_azure_batch_policy() -> None:
    """sign() against the real azure-batch 15.x policy (when installed)."""
    policy_mod = pytest.importorskip("azure.batch._patch")
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    policy = policy_mod.BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(ACCOUNT, KEY_B64))
    for method in ("GET", "POST", "DELETE", "HEAD"):
        for url in URLS:
            headers = _base_headers()
            http_request = HttpRequest(method, url, headers=dict(headers))
            policy.on_request(PipelineRequest(http_request, PipelineContext(None)))
            expected = http_request.headers["Authorization"]
            assert sign(method, url, dict(http_request.headers), ACCOUNT, KEY_B64) == expected

