"""Output files (OutputFile): what a task may ask to upload, and how an upload failure ends it.

The node matches patterns and uploads (``openbatch.agent.output_files``); here is what is
checked when a task is added, so a spec that cannot work is a 400 at once, not a failure later:
a pattern, a container URL (http or https; a SAS grants the rights), a pattern that does not
climb out of the task directory (``../stdout.txt`` from the working directory is in it), and
upload headers this server applies.
"""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import urlsplit

from .errors import BatchError, invalid_property

#: uploadHeaders applied to uploaded blobs (name, lower case -> the blob setting it becomes);
#: ``x-ms-meta-<name>`` headers become metadata. Others are refused when the task is added.
UPLOAD_HEADER_SETTINGS: dict[str, str] = {
    "content-type": "content_type", "x-ms-blob-content-type": "content_type",
    "content-encoding": "content_encoding", "x-ms-blob-content-encoding": "content_encoding",
    "content-language": "content_language", "x-ms-blob-content-language": "content_language",
    "content-disposition": "content_disposition", "x-ms-blob-content-disposition": "content_disposition",
    "cache-control": "cache_control", "x-ms-blob-cache-control": "cache_control",
    "x-ms-access-tier": "standard_blob_tier",
}
METADATA_HEADER_PREFIX = "x-ms-meta-"

#: Failure codes of an upload error (TaskFailureInformationCodes): such a task completes as failed,
#: is not retried, and is matched by exitConditions.fileUploadError.
FILE_UPLOAD_CODES = frozenset({"FileUploadAccessDenied", "FileUploadContainerNotFound", "FileUploadMiscError"})


def is_upload_failure(failure: dict[str, Any] | None) -> bool:
    return bool(failure) and failure.get("code") in FILE_UPLOAD_CODES  # type: ignore[union-attr]


def _climbs_out(pattern: str) -> bool:
    """From the working directory (one level below the task directory), does it leave the task directory?"""
    depth = 1
    for part in pattern.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def check_container_url(url: str, where: str) -> None:
    """400 unless ``url`` is an http or https URL (a SAS in its query grants the rights)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_property(where, url, "The container URL must be an http or https URL (with a SAS granting "
                                           "write).")


def check_service_logs_upload(config: Any) -> None:
    """UploadBatchServiceLogsConfiguration: a container URL to write to, a sane range, no managed identity."""
    if config.identityReference is not None:
        raise BatchError("UnsupportedProperty", "One of the properties specified in the request body is not "
                         "supported.", [("PropertyName", "identityReference"),
                                        ("Reason", "Uploads with a managed identity: no local equivalent; use a "
                                                   "containerUrl with a SAS. Nothing was changed.")])
    check_container_url(config.containerUrl, "containerUrl")
    if config.endTime is not None and config.endTime < config.startTime:
        raise invalid_property("endTime", config.endTime.isoformat(), "endTime must not be before startTime.")


def check_output_files(outputs: Sequence[Any] | None, prefix: str = "outputFiles") -> None:
    """400 for the first output file spec that cannot work (typed OutputFile structs)."""
    for i, spec in enumerate(outputs or ()):
        where = f"{prefix}/{i}"
        pattern = spec.filePattern
        if not pattern.strip():
            raise invalid_property(f"{where}/filePattern", pattern, "The file pattern must not be empty.")
        if "\\" not in pattern and not pattern.startswith(("/", "$")) and _climbs_out(pattern):
            raise invalid_property(f"{where}/filePattern", pattern,
                                   "The file pattern leads outside the task directory.")
        container = spec.destination.container
        if container is None:
            raise BatchError("MissingRequiredProperty", "A required property was not specified in the request body.",
                             [("PropertyName", f"{where}/destination/container")])
        check_container_url(container.containerUrl, f"{where}/destination/container/containerUrl")
        for j, header in enumerate(container.uploadHeaders or ()):
            name = header.name.strip().lower()
            if name not in UPLOAD_HEADER_SETTINGS and not (
                    name.startswith(METADATA_HEADER_PREFIX) and len(name) > len(METADATA_HEADER_PREFIX)):
                raise BatchError(
                    "UnsupportedProperty", "One of the properties specified in the request body is not supported.",
                    [("PropertyName", f"{where}/destination/container/uploadHeaders/{j}/name"),
                     ("PropertyValue", header.name),
                     ("Reason", "This upload header is not applied by this openbatch server (supported: "
                                + ", ".join(sorted(UPLOAD_HEADER_SETTINGS)) + ", x-ms-meta-*). Nothing was changed.")])
