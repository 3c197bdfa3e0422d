"""Output file specs checked at add time, and how an upload failure ends a task."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openbatch.domain.errors import BatchError
from openbatch.domain.execution import from_result
from openbatch.domain.exit_conditions import options_for
from openbatch.domain.models import OutputFile, decode
from openbatch.domain.output_files import check_output_files

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
UPLOAD_FAILURE = {"category": "usererror", "code": "FileUploadAccessDenied", "message": "denied"}


def spec(pattern: str = "*.txt", url: str = "https://a.blob.core.windows.net/c?sig=x", **container: object) -> OutputFile:
    return decode({"filePattern": pattern, "uploadOptions": {"uploadCondition": "taskcompletion"},
                   "destination": {"container": {"containerUrl": url, **container}}}, OutputFile)


@pytest.mark.parametrize("pattern", ["*.txt", "../stdout.txt", "a/../../std*.txt", "$AZ_BATCH_TASK_DIR/x",
                                     "/mnt/batch/tasks/x", "**/*.log"])
def test_patterns_that_may_work(pattern: str) -> None:
    check_output_files([spec(pattern)])


@pytest.mark.parametrize("pattern, where", [("../../x", "filePattern"), ("a/../../../x", "filePattern"),
                                            ("  ", "filePattern")])
def test_bad_patterns(pattern: str, where: str) -> None:
    with pytest.raises(BatchError) as info:
        check_output_files([spec("ok"), spec(pattern)])
    assert dict(info.value.values)["PropertyName"] == f"outputFiles/1/{where}"


@pytest.mark.parametrize("url", ["ftp://host/c", "not a url", "https://"])
def test_bad_container_urls(url: str) -> None:
    with pytest.raises(BatchError) as info:
        check_output_files([spec(url=url)])
    assert dict(info.value.values)["PropertyName"] == "outputFiles/0/destination/container/containerUrl"


def test_upload_headers() -> None:
    check_output_files([spec(uploadHeaders=[{"name": "Content-Type", "value": "text/plain"},
                                            {"name": "x-ms-meta-run", "value": "1"}])])
    with pytest.raises(BatchError) as info:
        check_output_files([spec(uploadHeaders=[{"name": "x-ms-lease-id", "value": "1"}])])
    assert (info.value.code, info.value.status) == ("UnsupportedProperty", 400)


def running(retries: int = 3, conditions: dict | None = None) -> dict:
    body = {"id": "t", "state": "running", "stateTransitionTime": "2026-01-01T00:00:00.000000Z", "constraints": {"maxTaskRetryCount": retries},
            "executionInfo": {"retryCount": 0, "requeueCount": 0, "startTime": "2026-01-01T00:00:00.000000Z"}}
    if conditions:
        body["exitConditions"] = conditions
    return body


@pytest.mark.parametrize("exit_code", [0, 4])
def test_an_upload_failure_completes_the_task_without_retry(exit_code: int) -> None:
    done = from_result(running(), {"exitCode": exit_code, "failure": UPLOAD_FAILURE}, NOW)
    info = done["executionInfo"]
    assert done["state"] == "completed" and info["result"] == "failure" and info["retryCount"] == 0
    assert info["exitCode"] == exit_code and info["failureInfo"] == UPLOAD_FAILURE


def test_file_upload_error_exit_options() -> None:
    conditions = {"fileUploadError": {"jobAction": "disable"}, "exitCodes": [{"code": 4, "exitOptions": {
        "jobAction": "none", "dependencyAction": "satisfy"}}]}
    upload_failed = from_result(running(0, conditions), {"exitCode": 0, "failure": UPLOAD_FAILURE}, NOW)
    assert options_for(upload_failed) == {"jobAction": "disable", "dependencyAction": "block"}
    # an exit code listed in exitCodes takes precedence over the upload error
    listed = from_result(running(0, conditions), {"exitCode": 4, "failure": UPLOAD_FAILURE}, NOW)
    assert options_for(listed) == {"jobAction": "none", "dependencyAction": "satisfy"}
    # without fileUploadError: default, else terminate/block
    plain = from_result(running(0), {"exitCode": 0, "failure": UPLOAD_FAILURE}, NOW)
    assert options_for(plain) == {"jobAction": "terminate", "dependencyAction": "block"}
