"""Tests for tests/support/swagger.py against the real Azure Batch Swagger (skipped if absent)."""

from __future__ import annotations

import copy
import json
import re

import pytest

from tests.support import swagger
from tests.support.swagger import (
    DEFAULT_VERSION,
    Operation,
    Spec,
    examples_dir,
    is_date_time,
    is_duration,
    load_spec,
    require_spec,
    spec_dir,
)

VERSIONS = ["2024-07-01.20.0", "2023-11-01.18.0"]
EXPECTED_OPERATION_COUNTS = {"2024-07-01.20.0": 77, "2023-11-01.18.0": 76}

# Official examples that genuinely contradict the spec.  Each entry: file -> status -> error
# prefixes that are expected (and are asserted to still occur, so the list cannot go stale).
KNOWN_BAD_EXAMPLES = {
    # VMExtension.settings is `type: object` ("JSON formatted public settings"), but this example
    # serialises it as a JSON *string* ("{\"secretsManagementSettingsKey\":...}").  The SDKs send
    # and expect an object; openbatch must return an object, so the example is wrong, not us.
    "PoolGet_VirtualMachineConfigurationWithExtensions.json": {
        "200": ["$.virtualMachineConfiguration.extensions[0].settings: "],
    },
}

SAMPLE_PARAMS = {
    "poolId": "pool-1",
    "nodeId": "tvm-1234567890_1-20240701t000000z",
    "jobId": "job-1",
    "taskId": "task-1",
    "jobScheduleId": "schedule-1",
    "applicationId": "app-1",
    "userName": "batchuser",
    "extensionName": "batchextension1",
    "thumbprintAlgorithm": "sha1",
    "thumbprint": "0123456789abcdef0123456789abcdef01234567",
    "filePath": "wd%2Fout.txt",  # an encoded '/' must stay inside the one {filePath} segment
}


def concrete_path(template: str) -> str:
    def sub(m: re.Match) -> str:
        return SAMPLE_PARAMS[m.group(1)]

    return re.sub(r"\{([^}]+)\}", sub, template)


@pytest.fixture(scope="module")
def spec() -> Spec:
    return require_spec()


def _example_names() -> list[str]:
    d = examples_dir()
    names = sorted(p.name for p in d.glob("*.json")) if d.is_dir() else []
    return names or ["<no examples found>"]


def _op_for_example(spec: Spec, name: str) -> Operation:
    ops = [op for op in spec.operations if name in spec.example_files(op)]
    assert len(ops) == 1, f"{name} is referenced by {[o.operation_id for o in ops]}"
    return ops[0]


# ------------------------------------------------------------------------------- loading
def test_spec_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENBATCH_SPEC_DIR", str(tmp_path))
    assert spec_dir() == tmp_path.resolve()


def test_spec_dir_default_is_sibling_shared_spec(monkeypatch):
    monkeypatch.delenv("OPENBATCH_SPEC_DIR", raising=False)
    repo_root = swagger.Path(swagger.__file__).resolve().parents[2]
    assert (repo_root / "tests").is_dir()
    assert spec_dir() == (repo_root.parent / "shared" / "spec").resolve()


def test_absent_spec_returns_none_and_skips_with_message(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENBATCH_SPEC_DIR", str(tmp_path))
    assert load_spec() is None
    assert load_spec("2023-11-01.18.0") is None
    with pytest.raises(pytest.skip.Exception) as exc:
        require_spec()
    msg = str(exc.value)
    assert msg.startswith(f"Azure Batch Swagger not found at {tmp_path.resolve()}"), msg
    assert "OPENBATCH_SPEC_DIR" in msg


@pytest.mark.parametrize("version", VERSIONS)
def test_loader_finds_spec(version):
    spec = require_spec(version)
    assert spec.version == version
    assert load_spec(version) is spec  # cached
    ids = [op.operation_id for op in spec.operations]
    assert len(ids) == len(set(ids)) == EXPECTED_OPERATION_COUNTS[version]


def test_operation_metadata(spec):
    pool_list = spec.operation("Pool_List")
    assert pool_list == Operation("Pool_List", "GET", "/pools", "Pools", True, False)
    assert spec.operation("Pool_ListUsageMetrics").deprecated
    assert spec.operation("Certificate_Get").deprecated
    assert spec.operation("Certificate_Get").path_template == (
        "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})"
    )
    assert spec.operation("Pool_Exists").method == "HEAD"
    assert not spec.operation("Task_ListSubtasks").pageable  # not x-ms-pageable in the spec
    assert spec.operation("Task_List").pageable
    assert {op.tag for op in spec.operations} >= {"Pools", "Jobs", "Tasks", "ComputeNodes", "Files"}


def test_definition_is_raw_swagger(spec):
    err = spec.definition("BatchError")
    assert set(err["properties"]) == {"code", "message", "values"}
    assert "required" not in err  # the `code` requirement is an overlay, raw stays untouched
    with pytest.raises(KeyError):
        spec.definition("NoSuchThing")


# ------------------------------------------------------------------------------- routing
@pytest.mark.parametrize("version", VERSIONS)
def test_match_every_operation(version):
    spec = require_spec(version)
    wrong = []
    for op in spec.operations:
        path = concrete_path(op.path_template)
        variants = [
            (op.method, path),
            (op.method.lower(), path + "?api-version=" + version + "&timeout=30"),
            (op.method, path.upper() if "{" not in op.path_template else path),
            (op.method, "https://account.region.batch.azure.com" + path + "?api-version=" + version),
        ]
        for method, p in variants:
            got = spec.match(method, p)
            if got != op:
                wrong.append((method, p, op.operation_id, got and got.operation_id))
    assert not wrong, "\n".join(map(str, wrong))


def test_match_params_and_encoding(spec):
    op, params = spec.match_with_params("GET", "/jobs/j%201/tasks/t1/files/wd%2Fsub%2Fout.txt")
    assert op.operation_id == "File_GetFromTask"
    assert params == {"jobId": "j 1", "taskId": "t1", "filePath": "wd/sub/out.txt"}
    assert spec.match("HEAD", "/pools/p/nodes/n/files/startup%2Fstdout.txt").operation_id == (
        "File_GetPropertiesFromComputeNode"
    )
    assert spec.match("DELETE", "/pools/p/nodes/n/files/a.txt").operation_id == "File_DeleteFromComputeNode"
    # an unencoded '/' is more segments, not one {filePath}
    assert spec.match("GET", "/jobs/j/tasks/t/files/wd/out.txt") is None


def test_match_certificate_forms(spec):
    base = "/certificates(thumbprintAlgorithm=sha1,thumbprint=ABC123)"
    op, params = spec.match_with_params("GET", base)
    assert op.operation_id == "Certificate_Get"
    assert params == {"thumbprintAlgorithm": "sha1", "thumbprint": "ABC123"}
    assert spec.match("DELETE", base).operation_id == "Certificate_Delete"
    assert spec.match("POST", base + "/canceldelete").operation_id == "Certificate_CancelDeletion"
    assert spec.match("POST", base + "/CancelDelete").operation_id == "Certificate_CancelDeletion"
    assert spec.match("GET", "/Certificates(ThumbprintAlgorithm=sha1,Thumbprint=abc)").operation_id == (
        "Certificate_Get"
    )
    # clients may percent-encode the punctuation
    encoded = "/certificates%28thumbprintAlgorithm%3Dsha1%2Cthumbprint%3Dabc%29"
    assert spec.match("GET", encoded).operation_id == "Certificate_Get"
    assert spec.match("GET", "/certificates").operation_id == "Certificate_List"
    assert spec.match("POST", "/certificates").operation_id == "Certificate_Add"
    assert spec.match("GET", "/certificates(thumbprint=abc)") is None


def test_match_negative_and_case(spec):
    assert spec.match("GET", "/POOLS/p1/Nodes").operation_id == "ComputeNode_List"
    assert spec.match("GET", "/pools/").operation_id == "Pool_List"
    assert spec.match("PUT", "/pools/p1") is None  # pools have PATCH + updateproperties, no PUT
    assert spec.match("GET", "/nosuch") is None
    assert spec.match("GET", "/pools/p1/nodes/n1/nosuch") is None
    assert spec.match("POST", "/jobs/j1/addtaskcollection").operation_id == "Task_AddCollection"
    assert spec.match("POST", "/jobs/j1/tasks").operation_id == "Task_Add"
    assert spec.match("GET", "/jobs/j1/taskcounts").operation_id == "Job_GetTaskCounts"
    # a resource literally named like an action is still the resource when the shape says so
    assert spec.match("GET", "/pools/resize").operation_id == "Pool_Get"


# ------------------------------------------------------------------------------- examples
def test_every_operation_has_an_example(spec):
    files = {p.name for p in examples_dir().glob("*.json")}
    referenced = {name for op in spec.operations for name in spec.example_files(op)}
    assert referenced == files
    assert all(spec.example_files(op) for op in spec.operations)


@pytest.mark.parametrize("name", _example_names())
def test_example_responses_validate(spec, name):
    path = examples_dir() / name
    if not path.is_file():
        pytest.skip(f"no example files in {examples_dir()}")
    example = json.loads(path.read_text(encoding="utf-8"))
    op = _op_for_example(spec, name)
    assert example["responses"], name
    for status, response in example["responses"].items():
        body = response.get("body")
        expected = KNOWN_BAD_EXAMPLES.get(name, {}).get(status, [])
        for strict in (False, True):
            errors = spec.validate_response(op, int(status), body, strict=strict)
            unexpected = [e for e in errors if not any(e.startswith(p) for p in expected)]
            assert not unexpected, f"{name} {status} strict={strict}: {unexpected}"
            for prefix in expected:
                assert any(e.startswith(prefix) for e in errors), f"{name}: known defect {prefix!r} gone"


def test_strict_sees_every_object_in_examples(spec):
    """Injecting a misspelt key into ANY object of ANY example body is reported in strict mode."""

    def objects(node, path=()):
        if isinstance(node, dict):
            yield path
            for k, v in node.items():
                yield from objects(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from objects(v, path + (i,))

    checked = 0
    for name in _example_names():
        if not (examples_dir() / name).is_file():
            continue
        op = _op_for_example(spec, name)
        example = json.loads((examples_dir() / name).read_text(encoding="utf-8"))
        for status, response in example["responses"].items():
            body = response.get("body")
            if not isinstance(body, dict):
                continue
            for path in objects(body):
                mutated = copy.deepcopy(body)
                target = mutated
                for part in path:
                    target = target[part]
                target["displayNmae"] = "x"
                errors = spec.validate_response(op, int(status), mutated, strict=True)
                assert any("'displayNmae'" in e for e in errors), (name, path, errors)
                assert not any("'displayNmae'" in e for e in spec.validate_response(op, int(status), mutated))
                checked += 1
    assert checked > 100


# ------------------------------------------------------------------------------- broken bodies
def test_list_result_with_dotted_next_link(spec):
    op = spec.operation("Pool_List")
    body = {
        "odata.metadata": "https://account.region.batch.azure.com/$metadata#pools",
        "value": [{"id": "p1", "vmSize": "standard_d2s_v3", "state": "active"}],
        "odata.nextLink": "https://account.region.batch.azure.com/pools?$skiptoken=abc",
    }
    assert spec.validate_response(op, 200, body) == []
    assert spec.validate_response(op, 200, body, strict=True) == []
    assert spec.validate_response(op, 200, json.dumps(body)) == []  # str/bytes are parsed
    assert spec.validate_response(op, 200, {**body, "odata.nextLink": 5}) == [
        "$['odata.nextLink']: 5 is not of type 'string'"
    ]
    assert spec.validate_response(op, 200, {"value": {}}) == ["$.value: {} is not of type 'array'"]


def test_wrong_types(spec):
    op = spec.operation("Pool_Get")
    errors = spec.validate_response(
        op,
        200,
        {"id": 5, "targetDedicatedNodes": "3", "enableAutoScale": "false", "currentLowPriorityNodes": 1.0},
    )
    assert errors == [
        "$.currentLowPriorityNodes: 1.0 is not of type 'integer'",
        "$.enableAutoScale: 'false' is not of type 'boolean'",
        "$.id: 5 is not of type 'string'",
        "$.targetDedicatedNodes: '3' is not of type 'integer'",
    ]
    assert spec.validate_response(op, 200, {"taskSlotsPerNode": True}) == [
        "$.taskSlotsPerNode: True is not of type 'integer'"
    ]
    assert spec.validate_response(op, 200, {"taskSlotsPerNode": 2**31}) == [
        "$.taskSlotsPerNode: 2147483648 is not a 'int32'"
    ]
    assert spec.validate_response(op, 200, {"id": None})  # x-nullable is not honoured: null is an error
    assert spec.validate_response(op, 200, [1]) == ["$: [1] is not of type 'object'"]


def test_missing_required(spec):
    op = spec.operation("Job_GetTaskCounts")
    counts = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    assert spec.validate_response(op, 200, {"taskCounts": counts, "taskSlotCounts": counts}) == []
    assert spec.validate_response(op, 200, {"taskCounts": counts}) == [
        "$: 'taskSlotCounts' is a required property"
    ]
    bad = {"taskCounts": {**counts, "failed": None}, "taskSlotCounts": counts}
    del bad["taskCounts"]["running"]
    assert spec.validate_response(op, 200, bad) == [
        "$.taskCounts: 'running' is a required property",
        "$.taskCounts.failed: None is not of type 'integer'",
    ]
    op = spec.operation("Task_AddCollection")
    assert spec.validate_response(op, 200, {"value": [{"taskId": "t1"}]}) == [
        "$.value[0]: 'status' is a required property"
    ]


def test_bad_enum_date_time_duration(spec):
    op = spec.operation("Task_Get")
    assert spec.validate_response(
        op, 200, {"id": "t", "state": "Active", "creationTime": "2024-07-01 10:11:12Z"}
    ) == [
        "$.creationTime: '2024-07-01 10:11:12Z' is not a 'date-time'",
        "$.state: 'Active' is not one of ['active', 'preparing', 'running', 'completed']",
    ]
    assert spec.validate_response(op, 200, {"creationTime": "2024-07-01T10:11:12"}) == [
        "$.creationTime: '2024-07-01T10:11:12' is not a 'date-time'"
    ]
    assert spec.validate_response(op, 200, {"constraints": {"maxWallClockTime": "01:00:00"}}) == [
        "$.constraints.maxWallClockTime: '01:00:00' is not a 'duration'"
    ]
    good = {
        "creationTime": "2024-07-01T10:11:12.1234567Z",
        "lastModified": "2024-07-01T10:11:12+02:00",
        "stateTransitionTime": "2024-07-01T10:11:12Z",
        "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S", "retentionTime": "P7D"},
    }
    assert spec.validate_response(op, 200, good, strict=True) == []


def test_strict_reports_misspelled_keys(spec):
    op = spec.operation("Pool_Get")
    body = {
        "id": "p",
        "odata.metadata": "https://x/$metadata#pools/@Element",
        "vmsize": "standard_d2s_v3",
        "startTask": {"commandLine": "x", "waitforSuccess": True},
        "metadata": [{"name": "a", "value": "b", "Value": "c"}],
        "resourceTags": {"anyTag": "free-form map values are allowed"},
    }
    assert spec.validate_response(op, 200, body) == []  # extra keys are legal Swagger
    assert spec.validate_response(op, 200, body, strict=True) == [
        "$: unexpected property 'vmsize' in CloudPool; did you mean 'vmSize'?",
        "$.startTask: unexpected property 'waitforSuccess' in StartTask; did you mean 'waitForSuccess'?",
        "$.metadata[0]: unexpected property 'Value' in MetadataItem; did you mean 'value'?",
    ]
    # nested through list results too
    op = spec.operation("Job_List")
    body = {"value": [{"id": "j", "poolInfo": {"poolID": "p"}}]}
    assert spec.validate_response(op, 200, body, strict=True) == [
        "$.value[0].poolInfo: unexpected property 'poolID' in PoolInformation; did you mean 'poolId'?"
    ]


def test_error_bodies(spec):
    op = spec.operation("Pool_Get")
    error = {
        "odata.metadata": "https://account.region.batch.azure.com/$metadata"
        "#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
        "code": "PoolNotFound",
        "message": {"lang": "en-US", "value": "The specified pool does not exist.\nRequestId:x\nTime:y"},
        "values": [{"key": "Reason", "value": "x"}],
    }
    for status in (304, 400, 404, 409, 412, 500, 503):
        assert spec.validate_response(op, status, error, strict=True) == [], status
        assert spec.validate_response(op, status, {"message": error["message"]}) == [
            "$: 'code' is a required property"
        ], status
    assert spec.validate_response(op, 404, {"code": "X", "message": "plain string"}) == [
        "$.message: 'plain string' is not of type 'object'"
    ]
    assert spec.validate_response(op, 404, {"code": "X", "mesage": {}}, strict=True) == [
        "$: unexpected property 'mesage' in BatchError; did you mean 'message'?"
    ]
    assert spec.validate_response(op, 412, None) == [
        "$: 412 response of Pool_Get requires a JSON body, got none"
    ]
    assert spec.validate_response(op, 304, None) == []  # HTTP: 304 carries no body


def test_status_and_empty_bodies(spec):
    add = spec.operation("Pool_Add")
    assert spec.validate_response(add, 201, None) == []
    assert spec.validate_response(add, 201, b"") == []
    assert spec.validate_response(add, 200, None) == [
        "status: 200 is not a documented response of Pool_Add (documented: 201, default)"
    ]
    assert spec.validate_response(add, 201, {"id": "p"}) == [
        "$: 201 response of Pool_Add must have no body, got {'id': 'p'}"
    ]
    assert spec.validate_response(spec.operation("Pool_Get"), 302, None)[0].startswith("status: 302")
    exists = spec.operation("Pool_Exists")
    assert spec.validate_response(exists, 200, None) == []
    assert spec.validate_response(exists, 404, None) == []  # documented, no schema
    assert spec.validate_response(exists, 404, {"code": "PoolNotFound"})  # ... so no body allowed
    head = spec.operation("File_GetPropertiesFromTask")
    assert spec.validate_response(head, 200, None) == []
    assert spec.validate_response(head, 404, None) == []  # HEAD error: no body to check
    get_file = spec.operation("File_GetFromTask")
    for body in (b"\x00\x01binary", "text", {"any": "thing"}, None):
        assert spec.validate_response(get_file, 200, body, strict=True) == []
    assert spec.validate_response(spec.operation("Pool_Get"), 200, None) == [
        "$: 200 response of Pool_Get requires a JSON body, got none"
    ]
    assert spec.validate_response(spec.operation("Pool_Get"), 200, "{not json")[0].startswith(
        "$: body is not valid JSON"
    )


def test_documented_response_headers(spec):
    get = spec.documented_response_headers(spec.operation("Pool_Get"), 200)
    assert get == {"client-request-id", "request-id", "etag", "last-modified"}
    file_headers = spec.documented_response_headers(spec.operation("File_GetFromTask"), 200)
    assert {"ocp-creation-time", "ocp-batch-file-isdirectory", "ocp-batch-file-url", "ocp-batch-file-mode",
            "content-type", "content-length"} <= file_headers
    assert "dataserviceid" in spec.documented_response_headers(spec.operation("Pool_Add"), 201)
    assert spec.documented_response_headers(spec.operation("Pool_Get"), 404) == set()
    assert spec.documented_response_headers(spec.operation("Pool_Get"), 201) == set()


# ------------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    "value,ok",
    [
        ("2024-07-01T10:11:12.1234567Z", True),
        ("2024-07-01T10:11:12Z", True),
        ("2024-07-01T10:11:12-05:30", True),
        ("0001-01-01T00:00:00Z", True),
        ("2024-07-01T10:11:12", False),
        ("2024-02-30T10:11:12Z", False),
        ("2024-07-01T24:00:00Z", False),
        ("2024-07-01", False),
        ("Mon, 01 Jul 2024 10:11:12 GMT", False),
    ],
)
def test_is_date_time(value, ok):
    assert is_date_time(value) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("PT1H", True),
        ("PT15M", True),
        ("P7D", True),
        ("PT0S", True),
        ("P10675199DT2H48M5.4775807S", True),
        ("P1DT12H", True),
        ("P", False),
        ("PT", False),
        ("P1DT", False),
        ("1:00:00", False),
        ("PT1.5", False),
        ("pt1h", False),
    ],
)
def test_is_duration(value, ok):
    assert is_duration(value) is ok


def test_default_version_constant():
    assert DEFAULT_VERSION == VERSIONS[0]
