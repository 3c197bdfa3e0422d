"""Which ExitOptions apply to a completed task: its exitConditions, else the documented defaults.

Defaults: jobAction ``none`` for exit code 0 and ``terminate`` otherwise; dependencyAction
``satisfy`` for exit code 0 and ``block`` otherwise. A task that failed before its
process ran (resource files, launch) is matched by ``preProcessingError``; one whose output
files failed to upload by ``fileUploadError``, unless its exit code is listed in ``exitCodes`` or
``exitCodeRanges`` (the docs: the exit code's action takes precedence).
"""

from __future__ import annotations

from typing import Any

from .output_files import is_upload_failure

Json = dict[str, Any]

PRE_PROCESSING_CODES = frozenset({
    "BlobNotFound", "BlobAccessDenied", "BlobDownloadTimedOut", "BlobDownloadMiscError",
    "ResourceDirectoryCreateFailed", "ResourceFileCreateFailed", "ResourceFileWriteFailed",
    "CommandProgramNotFound", "CommandLaunchFailed",
})


def _defaults(success: bool) -> Json:
    return {"jobAction": "none" if success else "terminate", "dependencyAction": "satisfy" if success else "block"}


def options_for(task: Json) -> Json:
    """The ExitOptions (jobAction, dependencyAction) of a completed task, defaults filled in."""
    info = task.get("executionInfo", {})
    conditions = task.get("exitConditions") or {}
    code = info.get("exitCode")
    failure = info.get("failureInfo") or {}
    chosen: Json | None = None
    if code is None or failure.get("code") in PRE_PROCESSING_CODES:
        chosen = conditions.get("preProcessingError") or conditions.get("default")
        return {**_defaults(False), **(chosen or {})}
    for mapping in conditions.get("exitCodes") or ():
        if mapping["code"] == code:
            chosen = mapping["exitOptions"]
            break
    else:
        for mapping in conditions.get("exitCodeRanges") or ():
            if mapping["start"] <= code <= mapping["end"]:
                chosen = mapping["exitOptions"]
                break
    upload_failed = is_upload_failure(failure)
    if chosen is None and upload_failed:
        chosen = conditions.get("fileUploadError") or conditions.get("default")
    elif chosen is None and code != 0:
        chosen = conditions.get("default")
    return {**_defaults(code == 0 and not upload_failed), **(chosen or {})}


def satisfies_dependents(task: Json) -> bool | None:
    """True/False once the task completed (may its dependents run?); None while it has not."""
    if task.get("state") != "completed":
        return None
    return options_for(task)["dependencyAction"] == "satisfy"
