"""What a run's failure before or after its process looks like: an Azure failure code, a message, details."""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TaskFailure", "display_url"]


class TaskFailure(Exception):
    """A run failed for a reason Azure names (``code``): resource files, output files, ..."""

    def __init__(self, code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)

    def failure(self) -> dict[str, Any]:
        """The TaskFailureInformation wire dict for this error."""
        info: dict[str, Any] = {"category": "usererror", "code": self.code, "message": self.message}
        if self.details:
            info["details"] = [{"name": name, "value": value} for name, value in self.details]
        return info


def display_url(url: str) -> str:
    """The URL without its query string: SAS tokens stay out of failure details and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
