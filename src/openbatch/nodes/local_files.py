"""Files of local compute nodes: each node's root directory is a folder on this host.

Implements :class:`openbatch.services.files.NodeFileSource`. Paths from clients are
resolved inside the node root (or the task directory within it); anything that
would escape it is refused as not found.
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..domain.errors import BatchError, not_found
from ..services.files import FileInfo, FileLocation

#: The documented maximum a single Get File returns is the whole file; we cap reads to keep memory bounded.
MAX_READ_BYTES = 64 * 1024 * 1024


class LocalNodeFiles:
    def __init__(self, node_root: Callable[[str, str], Path]) -> None:
        """``node_root(pool_id, node_id)`` is the folder holding that node's file system."""
        self.node_root = node_root

    def _base(self, where: FileLocation) -> Path:
        root = self.node_root(where.pool_id, where.node_id).resolve()
        return (root / where.root).resolve() if where.root else root

    def _path(self, where: FileLocation, path: str) -> Path:
        base = self._base(where)
        target = (base / path.replace("\\", "/").lstrip("/")).resolve()
        if target != base and base not in target.parents:
            raise not_found("FileNotFound", "file", path)
        if not target.exists():
            raise not_found("FileNotFound", "file", path)
        return target

    def _info(self, base: Path, path: Path) -> FileInfo:
        status = path.stat()
        directory = stat.S_ISDIR(status.st_mode)
        return FileInfo(
            name=path.relative_to(base).as_posix(),
            is_directory=directory,
            last_modified=datetime.fromtimestamp(status.st_mtime, timezone.utc),
            content_length=0 if directory else status.st_size,
            creation_time=datetime.fromtimestamp(status.st_ctime, timezone.utc),
            file_mode=f"{stat.S_IMODE(status.st_mode):o}",
        )

    def list(self, where: FileLocation, recursive: bool) -> list[FileInfo]:
        base = self._base(where)
        if not base.is_dir():
            return []
        if recursive:
            entries = [Path(dirpath) / name for dirpath, dirs, files in os.walk(base) for name in dirs + files]
        else:
            entries = list(base.iterdir())
        return [self._info(base, entry) for entry in entries]

    def stat(self, where: FileLocation, path: str) -> FileInfo:
        return self._info(self._base(where), self._path(where, path))

    def read(self, where: FileLocation, path: str, start: int, end: int | None) -> bytes:
        target = self._path(where, path)
        if target.is_dir():
            raise BatchError("OperationInvalidForCurrentState", "The specified path is a directory.",
                             [("FilePath", path)])
        size = target.stat().st_size
        if start > 0 and start >= size:
            raise BatchError("InvalidRange", "The range specified is invalid for the current size of the resource.",
                             [("Range", f"bytes={start}-{'' if end is None else end}"), ("Size", str(size))])
        stop = size if end is None else min(end + 1, size)
        if stop - start > MAX_READ_BYTES:
            raise BatchError("RequestBodyTooLarge", "The requested range is too large; ask for a smaller ocp-range.",
                             [("MaxLimit", str(MAX_READ_BYTES))])
        with target.open("rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)

    def delete(self, where: FileLocation, path: str, recursive: bool) -> None:
        target = self._path(where, path)
        if target.is_dir():
            if not recursive and any(target.iterdir()):
                raise BatchError("OperationInvalidForCurrentState",
                                 "The directory is not empty; set recursive=true to delete it.", [("FilePath", path)])
            shutil.rmtree(target)
        else:
            target.unlink()
