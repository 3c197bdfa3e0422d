"""The agent's own log ("Batch service logs"), kept on disk and uploaded on request.

Every agent writes its log to ``<log dir>/agent-<start time>-<pid>.log`` (rotated at
:data:`MAX_LOG_BYTES`, :data:`LOG_BACKUPS` old files kept) besides its stderr. For
ComputeNode_UploadBatchServiceLogs the agent hosting the node uploads each of those files that
holds a record in the requested time range (the whole file, as Azure documents: more than asked,
never less) to ``<container>/<virtual directory>/<file name>``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["LOG_BACKUPS", "MAX_LOG_BYTES", "LogUploadError", "files_between", "log_handler", "upload_logs"]

MAX_LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogUploadError(Exception):
    """The container refused the logs, or could not be reached; the message says how."""


def log_handler(log_dir: Path) -> logging.Handler:
    log_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    handler = logging.handlers.RotatingFileHandler(log_dir / f"agent-{started}-{os.getpid()}.log",
                                                   maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def _first_record(path: Path) -> datetime | None:
    """When the file's first record was written (its line starts with the local asctime)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.readline()[:23]
        return datetime.strptime(head, "%Y-%m-%d %H:%M:%S,%f").astimezone(timezone.utc)
    except (OSError, ValueError):
        return None


def files_between(log_dir: Path, start: datetime, end: datetime | None) -> list[Path]:
    """The log files holding a record between ``start`` and ``end`` (open-ended without one)."""
    chosen = []
    for path in sorted(log_dir.glob("agent-*.log*")):
        try:
            last = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except OSError:
            continue
        first = _first_record(path) or last
        if last >= start and (end is None or first <= end):
            chosen.append(path)
    return chosen


async def upload_logs(log_dir: Path, container_url: str, directory: str, start: datetime,
                      end: datetime | None) -> int:
    """Upload the log files of the range; the number uploaded. Raises :class:`LogUploadError`."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob.aio import ContainerClient

    files = files_between(log_dir, start, end)
    if not files:
        return 0
    try:
        async with ContainerClient.from_container_url(container_url) as container:
            for path in files:
                with open(path, "rb") as data:
                    await container.upload_blob(f"{directory}/{path.name}", data, overwrite=True)
    except (AzureError, ValueError, OSError) as error:
        status = getattr(error, "status_code", None)
        code = getattr(error, "error_code", None)
        detail = f"{status} {code}" if status else str(error) or type(error).__name__
        raise LogUploadError(f"the container refused or could not take the upload ({detail})"[:500]) from None
    return len(files)
