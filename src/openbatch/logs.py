"""How the server and its agents log: a level, and lines as text or as one JSON object each.

Shared by ``openbatch serve`` and ``openbatch agent`` (a local agent logs as its server does: the
server passes its settings down in the environment). Imports nothing of openbatch.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
#: How a server tells the agents it starts to log (they inherit its standard error).
LEVEL_VARIABLE = "OPENBATCH_LOG_LEVEL"
FORMAT_VARIABLE = "OPENBATCH_LOG_FORMAT"

#: The attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the ``extra=`` fields,
    and the traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str = "info", kind: str = "text") -> None:
    """Log at ``level`` and above to standard error, as ``kind`` (text or json), replacing any earlier setup.

    The libraries' own chatter stays at warning unless the level is debug (Alembic announces every
    migration step, the storage client every request)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {kind!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("alembic", "azure", "httpx", "httpcore", "uvicorn.error"):
        logging.getLogger(name).setLevel(max(quiet, root.level))
    os.environ[LEVEL_VARIABLE] = level
    os.environ[FORMAT_VARIABLE] = kind


def from_environment() -> tuple[str, str]:
    """The level and format a server passed down (info and text when none did)."""
    level = os.environ.get(LEVEL_VARIABLE, "info")
    kind = os.environ.get(FORMAT_VARIABLE, "text")
    return (level if level in LEVELS else "info", kind if kind in FORMATS else "text")
