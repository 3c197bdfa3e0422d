"""Azure Batch Swagger 2.0 contract helpers for tests.

The spec files are never vendored into the repo.  They are looked up at runtime in
``$OPENBATCH_SPEC_DIR`` or, failing that, ``<repo root>/../shared/spec`` (repo root = parent
of ``tests/``).  :func:`load_spec` returns ``None`` when the file is absent; tests that need it
call :func:`require_spec`, which skips with ``Azure Batch Swagger not found at <path>: ...``.

Typical use::

    spec = require_spec()
    op = spec.match("GET", "/pools/p1")              # -> Operation(operation_id="Pool_Get", ...)
    assert spec.validate_response(op, resp.status_code, resp.json(), strict=True) == []
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import referencing
from jsonschema import Draft4Validator, FormatChecker
from referencing.jsonschema import DRAFT4

DEFAULT_VERSION = "2024-07-01.20.0"
SPEC_URI = "urn:openbatch:azure-batch-swagger"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Keys that strict mode never reports (OData envelope annotations the real service adds).
STRICT_IGNORED_KEYS = frozenset({"odata.metadata"})
# Properties api-version 2025-06-01 (azure-batch 15.1) added to definitions of the stored spec:
# echoed to the clients that sent them, never reported.
ADDED_IN_2025_06_01: dict[str, frozenset[str]] = {"TaskSchedulingPolicy": frozenset({"jobDefaultOrder"})}
# Schemas here are Swagger 2.0; these keywords have no JSON-Schema meaning and are dropped.
_SWAGGER_ONLY_KEYWORDS = frozenset({"readOnly", "discriminator", "example", "externalDocs", "xml"})


def spec_dir() -> Path:
    """Directory holding ``BatchService-<version>.json`` (may not exist)."""
    env = os.environ.get("OPENBATCH_SPEC_DIR")
    if env:
        return Path(env).expanduser().resolve()
    repo_root = Path(__file__).resolve().parents[2]
    return (repo_root.parent / "shared" / "spec").resolve()


def spec_path(version: str = DEFAULT_VERSION) -> Path:
    return spec_dir() / f"BatchService-{version}.json"


def examples_dir(version: str = DEFAULT_VERSION) -> Path:
    """``x-ms-examples`` files for ``version`` (only shipped for some versions)."""
    return spec_dir() / f"examples-{version}"


def spec_missing_message(version: str = DEFAULT_VERSION) -> str:
    return (
        f"Azure Batch Swagger not found at {spec_path(version)}: set OPENBATCH_SPEC_DIR to the "
        f"directory containing BatchService-{version}.json (default <repo>/../shared/spec)"
    )


_cache: dict[tuple[str, str], Spec] = {}
_cache_lock = threading.Lock()


def load_spec(version: str = DEFAULT_VERSION) -> Spec | None:
    """Parsed spec (cached per file path), or ``None`` if the file is absent."""
    path = spec_path(version)
    if not path.is_file():
        return None
    key = (str(path), version)
    with _cache_lock:
        spec = _cache.get(key)
        if spec is None:
            spec = _cache[key] = Spec(json.loads(path.read_text(encoding="utf-8")), path=path)
        return spec


def require_spec(version: str = DEFAULT_VERSION) -> Spec:
    """Like :func:`load_spec` but ``pytest.skip``s when the spec is absent."""
    spec = load_spec(version)
    if spec is None:
        import pytest

        pytest.skip(spec_missing_message(version))
    return spec


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path_template: str
    tag: str | None
    pageable: bool
    deprecated: bool


# ----------------------------------------------------------------------------------- formats
_DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$"
)
_DURATION_RE = re.compile(
    r"^-?P(?=\d|T\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$"
)
_UUID_RE = re.compile(r"^\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?$")


def is_date_time(value: str) -> bool:
    """ISO 8601 / RFC 3339 date-time with a timezone; fractional seconds of any length optional."""
    m = _DATE_TIME_RE.match(value)
    if not m:
        return False
    try:
        datetime(*(int(g) for g in m.group(1, 2, 3, 4, 5, 6)))
    except ValueError:
        return False
    return m.group(9) is None or (int(m.group(9)) <= 23 and int(m.group(10)) <= 59)


def is_duration(value: str) -> bool:
    """ISO 8601 duration as serialised by Azure (``PT1H``, ``P7D``, ``P10675199DT2H48M5.4775807S``)."""
    return bool(_DURATION_RE.match(value))


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    def strings(fn):
        return lambda v: not isinstance(v, str) or fn(v)

    def int_range(lo, hi):
        return lambda v: isinstance(v, bool) or not isinstance(v, int) or lo <= v <= hi

    checker.checks("date-time")(strings(is_date_time))
    checker.checks("duration")(strings(is_duration))
    checker.checks("uuid")(strings(lambda v: bool(_UUID_RE.match(v))))
    checker.checks("int32")(int_range(-(2**31), 2**31 - 1))
    checker.checks("int64")(int_range(-(2**63), 2**63 - 1))
    return checker


_FORMAT_CHECKER = _format_checker()


# ------------------------------------------------------------------------- schema conversion
def _to_json_schema(node: Any) -> Any:
    """Swagger 2.0 schema -> Draft 4 schema: drop ``x-*`` and Swagger-only keywords,
    ``type: object, format: file`` becomes "anything".  Property names are left untouched."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "file":
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in _SWAGGER_ONLY_KEYWORDS:
            continue
        if key in ("properties", "definitions"):
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in ("enum", "required", "default"):
            out[key] = value
        else:
            out[key] = _to_json_schema(value)
    return out


def _absolutize_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_absolutize_refs(n) for n in node]
    if isinstance(node, dict):
        return {
            k: SPEC_URI + v if k == "$ref" and str(v).startswith("#") else _absolutize_refs(v)
            for k, v in node.items()
        }
    return node


def _json_path(parts) -> str:
    path = "$"
    for p in parts:
        if isinstance(p, int):
            path += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            path += "." + p
        else:
            path += "['" + p.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------ Spec
class Spec:
    def __init__(self, raw: dict, path: Path | None = None):
        self.raw = raw
        self.path = path
        self.version: str = raw.get("info", {}).get("version", "")
        self.operations: list[Operation] = []
        self._responses: dict[str, dict[str, dict]] = {}
        self._by_id: dict[str, Operation] = {}
        self._examples: dict[str, list[str]] = {}
        routes = []
        for template, item in raw.get("paths", {}).items():
            for method, body in item.items():
                if method not in HTTP_METHODS:
                    continue
                op = Operation(
                    operation_id=body["operationId"],
                    method=method.upper(),
                    path_template=template,
                    tag=(body.get("tags") or [None])[0],
                    pageable="x-ms-pageable" in body,
                    deprecated=bool(body.get("deprecated", False)),
                )
                self.operations.append(op)
                self._by_id[op.operation_id] = op
                self._responses[op.operation_id] = body.get("responses", {})
                self._examples[op.operation_id] = [
                    Path(ex["$ref"]).name for ex in body.get("x-ms-examples", {}).values() if "$ref" in ex
                ]
                segments = [self._segment_regex(s) for s in template.split("/")]
                literal_weight = sum(len(re.sub(r"\{[^}]*\}", "", s)) for s in template.split("/"))
                routes.append((literal_weight, op, segments))
        # More literal text first, so a literal segment wins over a {param}.
        routes.sort(key=lambda r: -r[0])
        self._routes = routes

        self._schema_doc = _to_json_schema(raw)
        # Overlay (openbatch policy, not in the Swagger): every BatchError carries a `code`.
        # The Swagger marks none of BatchError's fields required; the real service always sends
        # `code` (+ `message`), and clients key their error handling off it.
        err = self._schema_doc.get("definitions", {}).get("BatchError")
        if err is not None:
            err["required"] = sorted(set(err.get("required", [])) | {"code"})
        self._registry = referencing.Registry().with_resource(
            SPEC_URI, DRAFT4.create_resource(self._schema_doc)
        )
        self._validators: dict[str, Draft4Validator] = {}

    # ---------------------------------------------------------------- lookup
    def operation(self, operation_id: str) -> Operation:
        return self._by_id[operation_id]

    def definition(self, name: str) -> dict:
        """Raw Swagger definition ``#/definitions/<name>`` (KeyError if unknown)."""
        return self.raw["definitions"][name]

    def example_files(self, op: Operation) -> list[str]:
        """File names of the op's ``x-ms-examples`` (relative to :func:`examples_dir`)."""
        return list(self._examples.get(op.operation_id, []))

    def responses(self, op: Operation) -> dict[str, dict]:
        return self._responses[op.operation_id]

    # ---------------------------------------------------------------- routing
    @staticmethod
    def _segment_regex(segment: str) -> re.Pattern:
        parts = re.split(r"(\{[^}]+\})", segment)
        whole_param = len(parts) == 3 and parts[0] == parts[2] == ""
        pattern = "".join(
            (r"(.+)" if whole_param else r"([^/(),=]+?)") if p.startswith("{") else re.escape(p)
            for p in parts
            if p
        )
        return re.compile(pattern, re.IGNORECASE | re.DOTALL)

    def match_with_params(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """Like :meth:`match`, also returning the decoded path parameters."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if "://" in path:  # tolerate a full URL
            path = urlsplit(path).path
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        # Split the *raw* path so an encoded %2F stays inside its segment, then decode each.
        segments = [unquote(s) for s in path.split("/")]
        method = method.upper()
        for _, op, regexes in self._routes:
            if op.method != method or len(regexes) != len(segments):
                continue
            values: list[str] = []
            for rx, seg in zip(regexes, segments):
                m = rx.fullmatch(seg)
                if m is None:
                    break
                values.extend(m.groups())
            else:
                names = re.findall(r"\{([^}]+)\}", op.path_template)
                return op, dict(zip(names, values))
        return None

    def match(self, method: str, path: str) -> Operation | None:
        """Operation for a raw request path (query ignored, %-encoding allowed, literals
        case-insensitive; a ``{param}`` segment matches exactly one raw segment)."""
        found = self.match_with_params(method, path)
        return found[0] if found else None

    # ---------------------------------------------------------------- validation
    def _validator(self, schema: dict) -> Draft4Validator:
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = self._validators[key] = Draft4Validator(
                _absolutize_refs(_to_json_schema(schema)),
                registry=self._registry,
                format_checker=_FORMAT_CHECKER,
            )
        return v

    def _response_schema(self, op: Operation, status: int) -> tuple[bool, dict | None, str | None]:
        """(known, schema, error).  ``schema`` None means "no body"."""
        responses = self._responses[op.operation_id]
        doc = responses.get(str(status))
        if doc is not None:
            return True, doc.get("schema"), None
        if status in (304, 412) or 400 <= status <= 599:
            default = responses.get("default")
            return True, (default or {}).get("schema") or {"$ref": "#/definitions/BatchError"}, None
        documented = ", ".join(sorted(responses))
        return False, None, (
            f"status: {status} is not a documented response of {op.operation_id} (documented: {documented})"
        )

    def validate_response(self, op: Operation, status: int, body: Any, strict: bool = False) -> list[str]:
        """Errors (``"<json path>: <message>"``) for a response; ``[]`` if it conforms.

        ``body`` is the parsed JSON (``str``/``bytes`` are parsed), ``None`` for no body.
        ``strict=True`` also reports object keys the schema does not define (except
        ``odata.metadata``), to catch misspelt camelCase names.
        """
        status = int(status)
        known, schema, error = self._response_schema(op, status)
        if not known:
            return [error]
        empty = body is None or body == b"" or body == ""
        if schema is None:
            if empty:
                return []
            got = _short(repr(body), 120)
            return [f"$: {status} response of {op.operation_id} must have no body, got {got}"]
        if schema.get("type") == "object" and schema.get("format") == "file":
            return []
        if empty and (op.method == "HEAD" or status == 304):
            return []  # HTTP forbids a body here; nothing to validate
        if op.method == "HEAD":
            return [f"$: HEAD response must have no body, got {_short(repr(body), 120)}"]
        if empty:
            return [f"$: {status} response of {op.operation_id} requires a JSON body, got none"]
        if isinstance(body, (bytes, bytearray, str)):
            try:
                body = json.loads(body)
            except ValueError as exc:
                return [f"$: body is not valid JSON ({exc})"]
        found = self._validator(schema).iter_errors(body)
        errors = [
            f"{e.json_path}: {_short(e.message)}"
            for e in sorted(found, key=lambda e: list(map(str, e.absolute_path)))
        ]
        if strict:
            errors.extend(self.unknown_keys(schema, body))
        return errors

    def documented_response_headers(self, op: Operation, status: int) -> set[str]:
        responses = self._responses[op.operation_id]
        doc = responses.get(str(int(status)))
        if doc is None and (int(status) in (304, 412) or 400 <= int(status) <= 599):
            doc = responses.get("default")
        return {h.lower() for h in (doc or {}).get("headers", {})}

    # ---------------------------------------------------------------- strict walker
    def _resolve(self, schema: dict) -> dict:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r}")
            node: Any = self.raw
            for part in ref[2:].split("/"):
                node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
            schema = node
            seen += 1
            if seen > 64:
                raise ValueError(f"$ref loop at {ref!r}")
        return schema

    def _collect(self, schema: dict, props: dict, addl: list, items: list, names: list) -> None:
        if isinstance(schema, dict) and "$ref" in schema:
            names.append(schema["$ref"].rsplit("/", 1)[-1])
        schema = self._resolve(schema)
        if not isinstance(schema, dict):
            return
        props.update(schema.get("properties", {}))
        ap = schema.get("additionalProperties")
        if ap is not None and ap is not False:
            addl.append(ap if isinstance(ap, dict) else {})
        if "items" in schema:
            items.append(schema["items"])
        for sub in schema.get("allOf", []):
            self._collect(sub, props, addl, items, names)

    def unknown_keys(self, schema: dict, instance: Any, path: tuple = ()) -> list[str]:
        """Keys of ``instance`` not defined by ``schema`` (through $ref / allOf), recursively."""
        props: dict[str, Any] = {}
        addl: list[dict] = []
        items: list[dict] = []
        names: list[str] = []
        self._collect(schema, props, addl, items, names)
        out: list[str] = []
        if isinstance(instance, dict):
            for key, value in instance.items():
                if key in props:
                    out.extend(self.unknown_keys(props[key], value, path + (key,)))
                elif addl:
                    for sub in addl:
                        out.extend(self.unknown_keys(sub, value, path + (key,)))
                elif props and key not in STRICT_IGNORED_KEYS and not (
                        names and key in ADDED_IN_2025_06_01.get(names[0], ())):
                    where = f" in {names[0]}" if names else ""
                    hint = difflib.get_close_matches(key, list(props), n=1)
                    hint_text = f"; did you mean {hint[0]!r}?" if hint else ""
                    out.append(f"{_json_path(path)}: unexpected property {key!r}{where}{hint_text}")
        elif isinstance(instance, list):
            for i, value in enumerate(instance):
                for sub in items:
                    out.extend(self.unknown_keys(sub, value, path + (i,)))
        return out
