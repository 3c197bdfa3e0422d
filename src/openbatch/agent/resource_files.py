"""Download a task's resource files into its working directory before it starts.

A ResourceFile (wire dict) names exactly one source: ``httpUrl`` (with
``filePath``, the file's path under the working directory) or a Blob storage
container: ``storageContainerUrl`` (a SAS URL granting read and list, or a public
container), with ``blobPrefix`` (only blobs whose names start with it) and
``filePath`` as the directory the blobs go to, each at its name's path below it.
The server turns ``autoStorageContainerName`` into a ``storageContainerUrl`` of its
auto-storage account before the node sees it (one it could not resolve fails with a
message that says why). Containers are read with the official ``azure-storage-blob``
client; a container that holds no matching blob downloads nothing.

Each file is streamed to a temporary file next to its target, given its
``fileMode`` (octal, default ``0770``) and renamed into place, so a task never
sees half a file. A ``filePath`` that is absolute or leaves the working
directory (``..``, or a symlink out of it) is refused.

Failures raise :class:`ResourceFileError` with the Azure failure code: 404 (a missing
blob or container) ->
``BlobNotFound``, 401/403 -> ``BlobAccessDenied``, timeouts ->
``BlobDownloadTimedOut``, other HTTP or network errors -> ``BlobDownloadMiscError``,
local file system errors -> ``ResourceFileWriteFailed``. The runner turns that
into a pre-processing error of the task (the process never starts).

The HTTP transport is injectable (``transport=``) so tests need no network.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

import httpx

from .failures import TaskFailure, display_url

__all__ = ["DEFAULT_FILE_MODE", "DOWNLOAD_TIMEOUT", "ResourceFileError", "download"]

#: ``fileMode`` when the resource file names none (Azure's Linux default).
DEFAULT_FILE_MODE = 0o770
#: Per-operation limits of one download (connect, each read, ...). The task's
#: maxWallClockTime bounds the whole attempt, downloads included (see runner).
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=30.0)
_CHUNK = 1 << 16


class ResourceFileError(TaskFailure):
    """A resource file could not be made available; ``code`` is the Azure failure code."""


def _write_failed(file_path: str, message: str, *extra: tuple[str, str]) -> ResourceFileError:
    return ResourceFileError("ResourceFileWriteFailed", message, [("FilePath", file_path), *extra])


def _file_mode(value: Any, file_path: str) -> int:
    if value is None or value == "":
        return DEFAULT_FILE_MODE
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:   # no setuid, setgid or sticky bit: root writes the file
        raise _write_failed(file_path, f"The fileMode '{value}' is not an octal file mode.",
                            ("FileMode", str(value)))
    return mode


def _target(working_dir: str, file_path: Any) -> str:
    """The absolute path ``file_path`` names under ``working_dir``; refuses anything outside it."""
    if not isinstance(file_path, str) or not file_path.strip():
        raise ResourceFileError("ResourceFileWriteFailed", "A resource file with httpUrl needs a filePath.")
    target = os.path.normpath(os.path.join(working_dir, file_path))
    if os.path.isabs(file_path) or not target.startswith(working_dir + os.sep):
        raise _write_failed(file_path, f"The resource file path '{file_path}' is not inside the task "
                            "working directory.")
    return target


def _prepare_parent(working_dir: str, target: str, file_path: str) -> None:
    """Create the target's directory; refuse it if a symlink leads it out of the working directory."""
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise _write_failed(file_path, f"Cannot create the directory for '{file_path}': "
                            f"{exc.strerror or exc}.") from None
    real_root, real_parent = os.path.realpath(working_dir), os.path.realpath(parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise _write_failed(file_path, f"The resource file path '{file_path}' leads outside the task "
                            "working directory.")


_HTTP_FAILURES = {
    404: ("BlobNotFound", "The resource file was not found at its httpUrl"),
    401: ("BlobAccessDenied", "Access to the resource file's httpUrl was denied"),
    403: ("BlobAccessDenied", "Access to the resource file's httpUrl was denied"),
}


def _http_error(status: int, url: str, file_path: str) -> ResourceFileError:
    default = ("BlobDownloadMiscError", "Downloading the resource file failed")
    code, message = _HTTP_FAILURES.get(status, default)
    reason = f"{status} {httpx.codes.get_reason_phrase(status)}".strip()
    details = [("FilePath", file_path), ("HttpUrl", display_url(url)), ("HttpStatusCode", str(status))]
    return ResourceFileError(code, f"{message} ({reason}).", details)


async def _fetch(client: httpx.AsyncClient, url: str, target: str, mode: int, file_path: str) -> None:
    """Stream ``url`` into a temporary file beside ``target``, set its mode, rename it into place."""
    where = [("FilePath", file_path), ("HttpUrl", display_url(url))]
    try:
        async with client.stream("GET", url) as response:
            if not response.is_success:
                raise _http_error(response.status_code, url, file_path)
            await _write_into_place(response.aiter_bytes(_CHUNK), target, mode, file_path)
    except httpx.TimeoutException:
        message = "Downloading the resource file timed out."
        raise ResourceFileError("BlobDownloadTimedOut", message, where) from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        message = f"Downloading the resource file failed: {exc or type(exc).__name__}"
        raise ResourceFileError("BlobDownloadMiscError", message, where) from None


async def _write_into_place(chunks: AsyncIterator[bytes], target: str, mode: int, file_path: str) -> None:
    """The chunks into a temporary file beside ``target``, its mode set, renamed into place: a task
    never sees half a file, and nothing is left behind when the download fails."""
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.",
                                    suffix=".download")
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                out.write(chunk)
        os.chmod(temp, mode)
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise _write_failed(file_path, f"Cannot write the resource file '{file_path}': "
                            f"{exc.strerror or exc}.") from None
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass


_NO_AUTO_STORAGE = ("autoStorageContainerName needs an auto-storage account, and this openbatch server has none "
                    "(openbatch serve --auto-storage CONNECTION_STRING).")


def _storage_error(error: Exception, where: list[tuple[str, str]]) -> ResourceFileError:
    """An azure-storage-blob error as the Azure failure code of a download."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestTimeoutError, ServiceResponseTimeoutError

    if isinstance(error, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        return ResourceFileError("BlobDownloadTimedOut", "Downloading the resource files timed out.", where)
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        code = str(getattr(error, "error_code", "") or "")
        details = [*where, ("HttpStatusCode", str(status))] + ([("ErrorCode", code)] if code else [])
        if status == 404:
            return ResourceFileError("BlobNotFound", f"The resource files' container was not found ({code}).", details)
        if status in (401, 403):
            return ResourceFileError("BlobAccessDenied", "Access to the resource files' container was denied "
                                     f"({code}); it must be readable and listable.", details)
        return ResourceFileError("BlobDownloadMiscError", f"Downloading the resource files failed ({status} {code}).",
                                 details)
    return ResourceFileError("BlobDownloadMiscError", f"Downloading the resource files failed: {error}"[:1000], where)


async def _download_container(spec: Mapping[str, Any], root: str) -> None:
    """Every blob of the container (below ``blobPrefix``) into ``filePath`` (a directory) of the working dir."""
    from azure.storage.blob.aio import ContainerClient

    url = str(spec.get("storageContainerUrl") or "")
    directory = str(spec.get("filePath") or "")
    where = [("ContainerUrl", display_url(url))] + ([("FilePath", directory)] if directory else [])
    base = _target(root, directory) if directory else root
    try:
        container = ContainerClient.from_container_url(url)
    except ValueError as exc:
        raise ResourceFileError("BlobDownloadMiscError", f"The container URL is not valid: {exc}", where) from None
    async with container:
        try:
            async for blob in container.list_blobs(name_starts_with=spec.get("blobPrefix") or None):
                name = blob.name
                file_path = f"{directory.rstrip('/')}/{name}" if directory else name
                if name.endswith("/") and not blob.size:
                    continue   # a directory marker
                target = _target(root, file_path)
                if not target.startswith(base + os.sep):
                    raise _write_failed(file_path, f"The blob '{name}' would be written outside '{directory}'.")
                mode = _file_mode(spec.get("fileMode"), file_path)
                _prepare_parent(root, target, file_path)
                await _fetch_blob(container, name, target, mode, file_path)
        except ResourceFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - any storage or network error fails the task, with its reason
            raise _storage_error(exc, where) from None


async def _fetch_blob(container: Any, name: str, target: str, mode: int, file_path: str) -> None:
    """One blob into place (see :func:`_write_into_place`)."""
    downloader = await container.download_blob(name)
    await _write_into_place(downloader.chunks(), target, mode, file_path)


async def download(
    files: Sequence[Mapping[str, Any]],
    working_dir: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout = DOWNLOAD_TIMEOUT,
) -> None:
    """Download every resource file into ``working_dir`` (which exists), in order.

    Raises :class:`ResourceFileError` at the first file that fails.
    """
    if not files:
        return
    root = os.path.abspath(working_dir)
    client: httpx.AsyncClient | None = None
    try:
        for spec in files:
            url = spec.get("httpUrl")
            if not url:
                if spec.get("storageContainerUrl"):
                    await _download_container(spec, root)
                    continue
                if spec.get("autoStorageContainerName"):
                    details = [("AutoStorageContainerName", str(spec["autoStorageContainerName"]))]
                    raise ResourceFileError("BlobDownloadMiscError", _NO_AUTO_STORAGE, details)
                raise ResourceFileError("BlobDownloadMiscError", "The resource file names no source.")
            file_path = spec.get("filePath")
            target = _target(root, file_path)
            mode = _file_mode(spec.get("fileMode"), file_path)
            _prepare_parent(root, target, file_path)
            if client is None:
                client = httpx.AsyncClient(follow_redirects=True, timeout=timeout, transport=transport)
            await _fetch(client, str(url), target, mode, file_path)
    finally:
        if client is not None:
            await client.aclose()
