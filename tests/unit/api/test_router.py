"""Routing: every operation resolves, literal segments win, file paths keep their slashes."""

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
