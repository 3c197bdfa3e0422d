"""Routing: every operation resolves, literal segments win, file paths keep their slashes."""

import random
import re
from urllib.parse import unquote

import pytest

from openbatch.api import handlers  # noqa: F401
from openbatch.api.router import HANDLERS, OPERATIONS, resolve
from openbatch.domain.errors import BatchError


def concrete(path: str) -> str:
    return (path.replace("{filePath}", "wd%2Fout.txt").replace("{thumbprintAlgorithm}", "sha1")
            .replace("{thumbprint}", "abc").replace("{", "x").replace("}", ""))


@pytest.mark.parametrize(("operation_id", "method", "path"), OPERATIONS)
def test_every_operation_resolves_to_itself(operation_id: str, method: str, path: str) -> None:
    resolved, handler, _ = resolve(method, concrete(path))
    assert resolved == operation_id
    assert (handler is not None) == (operation_id in HANDLERS)


def test_file_paths_decode_and_may_contain_slashes() -> None:
    for raw in ("/jobs/j/tasks/t/files/wd%2Fsub%2Fout.txt", "/jobs/j/tasks/t/files/wd/sub/out.txt"):
        operation_id, _, params = resolve("GET", raw)
        assert operation_id == "File_GetFromTask"
        assert params == {"jobId": "j", "taskId": "t", "filePath": "wd/sub/out.txt"}


def test_literal_paths_are_case_insensitive() -> None:
    assert resolve("GET", "/JOBS/j/TaskCounts")[0] == "Job_GetTaskCounts"


def test_unknown_path_and_wrong_method() -> None:
    with pytest.raises(BatchError) as unknown:
        resolve("GET", "/nothing/here")
    assert (unknown.value.code, unknown.value.status) == ("InvalidUri", 400)
    with pytest.raises(BatchError) as verb:
        resolve("PATCH", "/jobs")
    assert (verb.value.code, verb.value.status) == ("UnsupportedHttpVerb", 405)


def test_the_spec_lists_no_operation_we_do_not_know() -> None:
    from tests.support.swagger import require_spec

    spec = require_spec()
    assert {op.operation_id for op in spec.operations} <= {op for op, _, _ in OPERATIONS}


# -- the indexed lookup answers exactly what scanning every route answers --------------------


def _reference_routes() -> list[tuple[str, str, list[str], list[re.Pattern[str]]]]:
    return [(operation_id, method, pieces, [
        re.compile("".join(f"(?P<{t[1:-1]}>.+)" if t.startswith("{") else re.escape(t)
                           for t in re.split(r"(\{[^}]+\})", piece) if t), re.IGNORECASE | re.DOTALL)
        for piece in pieces]) for operation_id, method, path in OPERATIONS for pieces in [path.strip("/").split("/")]]


_REFERENCE = _reference_routes()


def _scan(method: str, raw_path: str) -> tuple[str, dict[str, str]] | str:
    """Reference: every route's regexes tried in turn, the fewest parameters winning."""
    parts = raw_path.strip("/").split("/")
    path_known, best = False, None
    for operation_id, op_method, pieces, patterns in _REFERENCE:
        candidate = parts
        if pieces[-1] == "{filePath}":
            if len(parts) < len(pieces):
                continue
            candidate = parts[: len(pieces) - 1] + ["/".join(parts[len(pieces) - 1:])]
        elif len(parts) != len(pieces):
            continue
        found = [p.fullmatch(part) for p, part in zip(patterns, candidate)]
        if not all(found):
            continue
        params = {k: unquote(v) for f in found for k, v in f.groupdict().items()}
        path_known = True
        if op_method == method and (best is None or len(params) < best[0]):
            best = (len(params), operation_id, params)
    if best is None:
        return "UnsupportedHttpVerb" if path_known else "InvalidUri"
    if any("\x00" in v for v in best[2].values()):
        return "InvalidUri"
    return best[1], best[2]


def _outcome(method: str, raw_path: str) -> tuple[str, dict[str, str]] | str:
    try:
        operation_id, _, params = resolve(method, raw_path)
    except BatchError as error:
        return error.code
    return operation_id, params


def _paths() -> list[str]:
    words = ["jobs", "JOBS", "Tasks", "pools", "nodes", "files", "users", "x", "", "%2F", "a%00b", "\xe9t\xe9",
             "taskcounts", "certificates(thumbprintAlgorithm=sha1,thumbprint=ab)", "certificates", "canceldelete",
             "extensions", "addtaskcollection", "jobschedules", "nodecounts", "rdp", "wd", "out.txt"]
    paths = {concrete(path) for _, _, path in OPERATIONS}
    paths |= {p.upper() for p in paths} | {p + "/" for p in paths} | {"/" + p for p in paths}
    paths |= {p + "/extra" for p in list(paths)} | {p.replace("/", "//", 2) for p in list(paths)}
    paths |= {"/", "", "//", "/certificates(thumbprintAlgorithm=sha1)"}
    rng = random.Random(7)
    for _ in range(3000):
        paths.add("/" + "/".join(rng.choice(words) for _ in range(rng.randint(1, 9))))
    return sorted(paths)


def test_indexed_lookup_equals_scanning_every_route() -> None:
    for path in _paths():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            assert _outcome(method, path) == _scan(method, path), (method, path)
