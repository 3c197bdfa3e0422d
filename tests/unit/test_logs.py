"""Log lines as JSON objects, and the settings' checks."""

from __future__ import annotations

import json
import logging

import pytest

from openbatch import logs


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("openbatch.access", logging.INFO, __file__, 1, "GET %s %d", ("/jobs", 200), None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_holds_the_message_and_the_extra_fields() -> None:
    line = json.loads(logs.JsonFormatter().format(_record(operation="Job_List", status=200, duration_ms=1.5)))
    assert line["message"] == "GET /jobs 200" and line["level"] == "info" and line["logger"] == "openbatch.access"
    assert line["operation"] == "Job_List" and line["status"] == 200 and line["duration_ms"] == 1.5
    assert line["time"].endswith("+00:00")
    assert "args" not in line and "msg" not in line and "exception" not in line


def test_a_json_line_carries_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(logs.JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


def test_unknown_levels_and_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        logs.configure("loud", "text")
    with pytest.raises(ValueError, match="log format"):
        logs.configure("info", "xml")
