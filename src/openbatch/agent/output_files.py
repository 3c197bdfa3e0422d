"""Upload a task's output files to Azure Blob Storage once its process has ended.

Each OutputFile spec whose ``uploadOptions.uploadCondition`` holds (``tasksuccess``: exit code 0,
``taskfailure``: any other end, ``taskcompletion``: always) has its pattern matched
(:mod:`.output_patterns`) and every file uploaded with the official ``azure-storage-blob``
client to the container URL (a SAS URL, http or https: Azure Storage or Azurite alike). A file
larger than the block size goes up in blocks (Put Block, Put Block List); the block size is
:data:`BLOCK_SIZE_VARIABLE` in the agent's environment (4 MiB by default). ``uploadHeaders``
become the blob's content settings, metadata and access tier.

At most :data:`MAX_PARALLEL_UPLOADS` files go up at once per agent, so the uploads of many tasks
never hold up task starts. Every spec is tried even after one failed (as much output as
possible is kept); the first failure is the task's: ``FileUploadContainerNotFound``,
``FileUploadAccessDenied`` or ``FileUploadMiscError``, category usererror. What was uploaded
and what failed is written to ``fileuploadout.txt`` and ``fileuploaderr.txt`` in the task
directory, as Azure's nodes do. A pattern that matches nothing uploads nothing (a line in
``fileuploadout.txt`` says so).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from ..domain.output_files import METADATA_HEADER_PREFIX, UPLOAD_HEADER_SETTINGS
from .failures import TaskFailure, display_url
from .output_patterns import Match, PatternError, blob_name, expand_variables, has_wildcard, matching_files

__all__ = ["BLOCK_SIZE_VARIABLE", "MAX_PARALLEL_UPLOADS", "UploadError", "upload_outputs", "wanted"]

#: Environment variable of the agent: the block size of uploads, in bytes (files up to it go in one Put Blob).
BLOCK_SIZE_VARIABLE = "OPENBATCH_BLOB_BLOCK_SIZE"
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
#: Files uploaded at once by one agent (all its tasks together).
MAX_PARALLEL_UPLOADS = 8

#: Container clients kept per event loop and container URL (their connections are reused by the next
#: task uploading there); at most this many, the least recently used closed first.
MAX_CLIENTS = 16

_LIMITS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()
_CLIENTS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[tuple[str, int], Any]]" = \
    weakref.WeakKeyDictionary()


class UploadError(TaskFailure):
    """An output file could not be uploaded; ``code`` is the Azure failure code."""


def wanted(spec: Mapping[str, Any], succeeded: bool) -> bool:
    """Does the spec's upload condition hold for a process that ended (succeeded: exit code 0)?"""
    condition = str((spec.get("uploadOptions") or {}).get("uploadCondition") or "taskcompletion").lower()
    if condition == "tasksuccess":
        return succeeded
    if condition == "taskfailure":
        return not succeeded
    return True


def _block_size() -> int:
    try:
        return max(1, int(os.environ.get(BLOCK_SIZE_VARIABLE) or DEFAULT_BLOCK_SIZE))
    except ValueError:
        return DEFAULT_BLOCK_SIZE


def _client(url: str) -> Any:
    """This loop's client of the container ``url`` (made on first use; ValueError for a bad URL)."""
    from azure.storage.blob.aio import ContainerClient

    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), OrderedDict())
    key = (url, _block_size())
    client = clients.get(key)
    if client is not None:
        clients.move_to_end(key)
        return client
    size = key[1]
    client = clients[key] = ContainerClient.from_container_url(url, max_single_put_size=size, max_block_size=size)
    while len(clients) > MAX_CLIENTS:
        _, old = clients.popitem(last=False)
        asyncio.get_running_loop().create_task(old.close())
    return client


async def close_clients() -> None:
    """Close this loop's container clients (the agent calls it when it stops)."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), None) or {}
    for client in clients.values():
        await client.close()


def _limit() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    limit = _LIMITS.get(loop)
    if limit is None:
        limit = _LIMITS[loop] = asyncio.Semaphore(MAX_PARALLEL_UPLOADS)
    return limit


def _upload_arguments(headers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from azure.storage.blob import ContentSettings

    settings: dict[str, str] = {}
    metadata: dict[str, str] = {}
    arguments: dict[str, Any] = {}
    for header in headers or ():
        name, value = str(header.get("name", "")).strip().lower(), str(header.get("value") or "")
        setting = UPLOAD_HEADER_SETTINGS.get(name)
        if setting == "standard_blob_tier":
            arguments[setting] = value
        elif setting is not None:
            settings[setting] = value
        elif name.startswith(METADATA_HEADER_PREFIX):
            metadata[name.removeprefix(METADATA_HEADER_PREFIX)] = value
    if settings:
        arguments["content_settings"] = ContentSettings(**settings)
    if metadata:
        arguments["metadata"] = metadata
    return arguments


def _storage_failure(error: Exception, where: list[tuple[str, str]]) -> UploadError:
    from azure.core.exceptions import HttpResponseError

    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        code = str(getattr(error, "error_code", "") or "")
        details = [*where, ("HttpStatusCode", str(status))] + ([("ErrorCode", code)] if code else [])
        if status == 404 and "ContainerNotFound" in code:
            return UploadError("FileUploadContainerNotFound",
                               "The Azure Storage container for uploading output files was not found.", details)
        if status in (401, 403):
            return UploadError("FileUploadAccessDenied",
                               "Access to the Azure Storage container for uploading output files was denied.",
                               details)
        return UploadError("FileUploadMiscError", f"Uploading the output file failed ({status} {code}).".strip(),
                           details)
    message = str(error) or type(error).__name__
    return UploadError("FileUploadMiscError", f"Uploading the output file failed: {message}"[:1000], where)


class _Log:
    """fileuploadout.txt and fileuploaderr.txt of the task directory."""

    def __init__(self, task_dir: str) -> None:
        self.task_dir = task_dir
        self.out: list[str] = []
        self.err: list[str] = []

    def info(self, line: str) -> None:
        self.out.append(f"{datetime.now(timezone.utc).isoformat(timespec='milliseconds')} {line}\n")

    def error(self, line: str) -> None:
        self.info(line)
        self.err.append(self.out[-1])

    def write(self) -> None:
        """Both files (a few lines: written inline, as the task's own files are)."""
        for name, lines in (("fileuploadout.txt", self.out), ("fileuploaderr.txt", self.err)):
            try:
                path = os.path.join(self.task_dir, name)
                try:   # (a link a process of the task's account put there is removed, never followed)
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                with open(os.open(path, flags, 0o644), "w", encoding="utf-8") as file:
                    file.writelines(lines)
            except OSError:
                pass


async def _upload_file(container: Any, match: Match, name: str, arguments: dict[str, Any]) -> int:
    async with _limit():
        with open(match.path, "rb") as data:
            size = os.fstat(data.fileno()).st_size
            await container.upload_blob(name, data, length=size, overwrite=True, max_concurrency=2, **arguments)
    return size


async def _upload_spec(spec: Mapping[str, Any], working_dir: str, task_dir: str,
                       environment: Mapping[str, str], log: _Log) -> UploadError | None:
    raw_pattern = str(spec.get("filePattern") or "")
    destination = (spec.get("destination") or {}).get("container") or {}
    url = str(destination.get("containerUrl") or "")
    where = [("FilePattern", raw_pattern), ("ContainerUrl", display_url(url))]
    pattern = expand_variables(raw_pattern, environment)
    try:   # one file is a stat or two; a wildcard walks directories: a worker thread does that
        matches = (await asyncio.to_thread(matching_files, pattern, working_dir, task_dir) if has_wildcard(pattern)
                   else matching_files(pattern, working_dir, task_dir))
    except (PatternError, OSError) as error:
        failure = UploadError("FileUploadMiscError", str(error), where)
        log.error(f"pattern {raw_pattern!r}: {error}")
        return failure
    if not matches:
        log.info(f"pattern {raw_pattern!r} matched no files: nothing uploaded")
        return None
    first: UploadError | None = None
    try:
        container = _client(url)
    except ValueError as error:
        log.error(f"pattern {raw_pattern!r}: the container URL is not valid: {error}")
        return UploadError("FileUploadMiscError", f"The container URL is not valid: {error}", where)
    arguments = _upload_arguments(destination.get("uploadHeaders") or ())
    for match in matches:
        name = blob_name(pattern, destination.get("path"), match)
        target = f"{display_url(url)}/{name}"
        try:
            sent = await _upload_file(container, match, name, arguments)
        except Exception as error:  # noqa: BLE001 - every storage, network or file error is the task's
            failure = _storage_failure(error, [*where, ("FilePath", match.path), ("BlobName", name)])
            log.error(f"{match.path} -> {target}: {failure.code}: {failure.message}")
            first = first or failure
            if failure.code != "FileUploadMiscError":
                break   # the container is missing or refuses us: the other files would fail alike
        else:
            log.info(f"{match.path} -> {target} ({sent} bytes)")
    return first


async def upload_outputs(specs: Sequence[Mapping[str, Any]], working_dir: str, task_dir: str,
                         environment: Mapping[str, str], succeeded: bool) -> None:
    """Upload what ``specs`` name for a process that ended; raise the first :class:`UploadError`."""
    log = _Log(task_dir)
    first: UploadError | None = None
    try:
        for spec in specs:
            if wanted(spec, succeeded):
                failure = await _upload_spec(spec, working_dir, task_dir, environment, log)
                first = first or failure
    finally:
        log.write()
    if first is not None:
        raise first
