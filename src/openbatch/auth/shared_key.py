"""Shared Key authentication for the Azure Batch data-plane API.

Server side: :func:`verify` rebuilds the string-to-sign from the request as received and
accepts the signature if it matches the documented canonical form or one of the variants
that real clients produce (azure-batch 14.x/15.x for Python, @azure/batch for JS).
Client side: :func:`sign` computes the ``Authorization`` value exactly like azure-batch 15.x.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, unquote, unquote_plus, urlparse

from openbatch.domain.errors import BatchError

__all__ = ["SignedRequest", "verify", "string_to_sign_variants", "sign", "parse_http_date"]

#: The standard headers whose values fill the fixed slots of the string-to-sign, in order.
_STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)

_AUTH_FAILED_MESSAGE = (
    "Server failed to authenticate the request. Make sure the value of Authorization header "
    "is formed correctly including the signature."
)
_INVALID_INFO_MESSAGE = (
    "Authentication information is not given in the correct format. Check the value of Authorization header."
)

_RFC1123 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (?:GMT|UTC)"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
#: Dates and query strings up to this long are memoized (clients repeat them); longer ones are not kept.
_CACHED_CHARS = 512


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an incoming request that Shared Key signs."""

    method: str
    raw_path: str  # the path exactly as on the request line, still percent-encoded
    raw_query: str  # the raw query string (no leading '?'), undecoded
    headers: Sequence[tuple[str, str]]  # as received; names any case
    body_length: int


# --------------------------------------------------------------------------- errors


def _auth_failed(detail: str) -> BatchError:
    return BatchError("AuthenticationFailed", _AUTH_FAILED_MESSAGE, [("AuthenticationErrorDetail", detail)])


def _invalid_info(detail: str) -> BatchError:
    return BatchError(
        "InvalidAuthenticationInfo", _INVALID_INFO_MESSAGE, [("AuthenticationErrorDetail", detail)]
    )


# --------------------------------------------------------------------------- parsing helpers


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Lower-cased header name -> values in the order received."""
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return out


def parse_http_date(value: str) -> datetime | None:
    """Parse an RFC 1123 date (``Sat, 21 Nov 2026 10:31:56 GMT``); None if malformed."""
    return _parse_date_cached(value) if len(value) <= _CACHED_CHARS else _parse_date(value)


@lru_cache(maxsize=256)  # a client sends the same date for a whole second
def _parse_date_cached(value: str) -> datetime | None:
    return _parse_date(value)


def _parse_date(value: str) -> datetime | None:
    m = _RFC1123.fullmatch(value.strip())
    if m is None:
        return None
    day, month, year, hh, mm, ss = m.groups()
    try:
        return datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
    except ValueError:
        return None


def _parse_authorization(value: str) -> tuple[str, bytes, str]:
    """Split ``SharedKey <account>:<base64>`` into (account, signature bytes, signature text)."""
    scheme, _, rest = value.strip().partition(" ")
    lowered = scheme.lower()
    if lowered == "bearer":
        raise _invalid_info(
            "Only Shared Key authentication is supported by this server; "
            "Microsoft Entra ID (Bearer) tokens are not accepted."
        )
    if lowered != "sharedkey":
        raise _invalid_info(
            f"Unsupported authorization scheme '{scheme}'. Expected 'SharedKey <account>:<signature>'."
        )
    account, colon, sig_text = rest.strip().partition(":")
    if not colon or not account or not sig_text:
        raise _invalid_info("The Authorization header must have the form 'SharedKey <account>:<signature>'.")
    try:
        sig = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_info("The signature in the Authorization header is not valid base64.") from None
    return account, sig, sig_text


def _query_pairs(raw_query: str, decode: Callable[[str], str]) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((decode(name), decode(value)))
    return pairs


def _query_form(pairs: list[tuple[str, str]], *, lower: bool, skip_blank: bool, join_all: bool) -> str:
    """One canonicalized-query form, each pair rendered as ``\\nname:value``.

    docs: lower, keep blanks, all values sorted and comma-joined.
    azure-batch (parse_qs): names as sent, blanks skipped, first value only.
    JS (url-parse): names as sent, blanks kept, first value only.
    """
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        if skip_blank and not value:
            continue
        grouped.setdefault(name.lower() if lower else name, []).append(value)
    parts = []
    for name in sorted(grouped):
        values = grouped[name]
        parts.append(f"\n{name}:{','.join(sorted(values)) if join_all else values[0]}")
    return "".join(parts)


def _ocp_block(
    hmap: Mapping[str, list[str]], *, prefix_only: bool, skip_empty: bool, docs: bool
) -> str:
    """Canonicalized ``ocp-`` headers, each line ``name:value\\n``.

    docs=True: duplicates comma-joined and whitespace folded (the docs' rules);
    otherwise every (name, value) is its own line, sorted as tuples (azure-batch).
    """
    lines: list[tuple[str, str]] = []
    for name, values in hmap.items():
        if not (name.startswith("ocp-") if prefix_only else "ocp-" in name):
            continue
        if skip_empty:
            values = [v for v in values if v]
            if not values:
                continue
        if docs:
            lines.append((name, ",".join(" ".join(v.split()) for v in values)))
        else:
            lines.extend((name, v) for v in values)
    lines.sort()
    return "".join(f"{name}:{value}\n" for name, value in lines)


def _docs_query(raw_query: str) -> str:
    """The docs' canonicalized query of a raw query string."""
    return _docs_query_cached(raw_query) if len(raw_query) <= _CACHED_CHARS else _docs_query_of(raw_query)


@lru_cache(maxsize=1024)  # clients repeat their queries (api-version, the same filters)
def _docs_query_cached(raw_query: str) -> str:
    return _docs_query_of(raw_query)


def _docs_query_of(raw_query: str) -> str:
    return _query_form(_query_pairs(raw_query, unquote_plus), lower=True, skip_blank=False, join_all=True)


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------- string-to-sign


def _iter_variants(request: SignedRequest, account: str, hmap: Mapping[str, list[str]]) -> Iterator[str]:
    """Yield distinct candidate strings-to-sign, the docs' canonical form first.

    The canonical form is built and yielded before any alternative is computed, so a
    request that matches it costs one string and one HMAC.
    """

    def first(name: str) -> str:
        values = hmap.get(name)
        return values[0] if values else ""

    slots = [first(h) for h in _STANDARD_HEADERS]
    cl_sent = slots[2]
    ocp_date = first("ocp-date")
    date_sent = slots[5]
    date_rule = "" if ocp_date else date_sent  # the docs: ocp-date empties the Date slot
    head = request.method + "\n"
    resource = "/" + account + request.raw_path

    def fixed(cl: str, date: str) -> str:
        slots[2], slots[5] = cl, date
        return head + "\n".join(slots) + "\n"

    docs_headers = _ocp_block(hmap, prefix_only=True, skip_empty=False, docs=True)
    canonical = fixed(cl_sent, date_rule) + docs_headers + resource + _docs_query(request.raw_query)
    yield canonical

    # Alternatives, dimension by dimension (innermost varies fastest).
    # Content-Length slot: as sent; "" or "0" for an empty body; the body's length when a
    # non-empty body came without the header (chunked; JS signs the byte length).
    cls = [cl_sent]
    if request.body_length == 0:
        cls += ["", "0"]
    elif not cl_sent:
        cls.append(str(request.body_length))
    dates = [date_rule] + ([date_sent] if ocp_date and date_sent else [])
    header_blocks = _unique(
        [
            docs_headers,
            _ocp_block(hmap, prefix_only=False, skip_empty=True, docs=False),  # azure-batch (Python)
            _ocp_block(hmap, prefix_only=True, skip_empty=True, docs=False),  # @azure/batch (JS)
        ]
    )
    decoders: list[Callable[[str], str]] = [unquote_plus]
    if "+" in request.raw_query:
        decoders.append(unquote)  # a literal '+' that the client did not treat as a space
    queries: list[str] = []
    for decode in decoders:
        pairs = _query_pairs(request.raw_query, decode)
        queries += [
            _query_form(pairs, lower=True, skip_blank=False, join_all=True),  # docs
            _query_form(pairs, lower=False, skip_blank=True, join_all=False),  # azure-batch
            _query_form(pairs, lower=True, skip_blank=True, join_all=False),  # azure-batch, names lowered
            _query_form(pairs, lower=False, skip_blank=False, join_all=False),  # JS
        ]
    queries = _unique(queries)

    seen = {canonical}
    for cl in _unique(cls):
        for date in _unique(dates):
            prefix = fixed(cl, date)
            for block in header_blocks:
                for query in queries:
                    candidate = prefix + block + resource + query
                    if candidate not in seen:
                        seen.add(candidate)
                        yield candidate


def string_to_sign_variants(request: SignedRequest, account: str) -> list[str]:
    """All accepted strings-to-sign for ``request``, deduplicated, canonical (docs) first."""
    return list(_iter_variants(request, account, _header_map(request.headers)))


# --------------------------------------------------------------------------- verification


def _check_date(hmap: Mapping[str, list[str]], now: datetime, max_age: timedelta) -> None:
    name = "ocp-date"
    values = [v for v in hmap.get(name, ()) if v]
    if not values:
        name = "Date"
        values = [v for v in hmap.get("date", ()) if v]
    if not values:
        raise _auth_failed("The request must include an ocp-date or Date header.")
    when = parse_http_date(values[0])
    if when is None:
        raise _auth_failed(f"The {name} header value '{values[0]}' is not a valid RFC 1123 date.")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    skew = now - when
    if skew > max_age or -skew > max_age:
        minutes = f"{max_age.total_seconds() / 60:g}"
        where = "older than" if skew > max_age else "more than"
        after = "" if skew > max_age else " in the future"
        raise _auth_failed(f"Request date is {where} {minutes} minutes{after} ({name}: {values[0]}).")


def verify(
    request: SignedRequest,
    keys: Mapping[str, bytes],
    now: datetime,
    max_age: timedelta = timedelta(minutes=15),
) -> str:
    """Return the authenticated account name, or raise BatchError.

    ``keys`` maps account name -> decoded key bytes. Missing Authorization, bad or stale
    date, unknown account and bad signature are 403 AuthenticationFailed; a malformed
    Authorization header is 400 InvalidAuthenticationInfo.
    """
    hmap = _header_map(request.headers)
    auth = hmap.get("authorization")
    if not auth:
        raise _auth_failed("The Authorization header is missing. Use 'SharedKey <account>:<signature>'.")
    if len(auth) > 1:
        raise _invalid_info("The request has more than one Authorization header.")
    account, provided, provided_text = _parse_authorization(auth[0])
    _check_date(hmap, now, max_age)

    name = account
    key = keys.get(account)
    if key is None:
        name = account.lower()
        key = keys.get(name)
    if key is None:
        raise _auth_failed(f"The account '{account}' is not known to this server.")

    canonical = ""
    for sts in _iter_variants(request, account, hmap):
        canonical = canonical or sts
        if hmac.compare_digest(hmac.digest(key, sts.encode("utf-8"), "sha256"), provided):
            return name
    raise _auth_failed(
        f"The MAC signature found in the HTTP request '{provided_text}' is not the same as any "
        f"computed signature. Server used following string to sign: '{canonical}'."
    )


# --------------------------------------------------------------------------- client signing


def sign(method: str, url: str, headers: Mapping[str, str], account: str, key_b64: str) -> str:
    """The ``Authorization`` header value for a request, computed like azure-batch 15.x.

    ``headers`` should already hold ``ocp-date`` (this function does not add it).
    """
    parsed = urlparse(url)
    hd = {k.lower(): v for k, v in headers.items() if v}
    if method not in ("GET", "HEAD") and "content-length" not in hd:
        hd["content-length"] = "0"
    sts = method + "\n" + "\n".join(str(hd.get(h, "")) for h in _STANDARD_HEADERS) + "\n"
    ocp = sorted((k.lower(), v) for k, v in headers.items() if "ocp-" in k and v)
    sts += "".join(f"{k}:{v}\n" for k, v in ocp)
    sts += f"/{account}{parsed.path}"
    query = parse_qs(parsed.query)
    for name in sorted(query):
        if query[name][0]:
            sts += f"\n{name}:{query[name][0]}"
    digest = hmac.digest(base64.b64decode(key_b64), sts.encode("utf-8"), "sha256")
    return f"SharedKey {account}:{base64.b64encode(digest).decode('ascii')}"
