"""A node's files: its root directory is a folder on the host that runs it.

The agent serves its nodes' files with this (the Files API of a node on another host), and
the server reads its local nodes' folders with it directly (it implements
:class:`openbatch.services.files.NodeFileSource`). Paths from clients are
resolved inside the node root (or the task directory within it); anything that
would escape it is refused as not found. What a task leaves in its directory can be
hostile, so:

- only regular files are read: the file is opened non-blocking without following a
  last symlink, then checked with ``fstat`` (a FIFO, a socket or a device is refused
  with 409, and never blocks a thread);
- a listing leaves out what it cannot show safely: names that are not UTF-8, symlinks
  that dangle or point outside the directory listed, and entries that vanish while
  it runs;
- the directory itself (``.``, the empty path, or a path that resolves to it) cannot
  be deleted: 400 ``InvalidUri``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..domain.errors import BatchError, not_found
from ..protocol import FileInfo, FileLocation

#: The documented maximum a single Get File returns is the whole file; we cap reads to keep memory bounded.
MAX_READ_BYTES = 64 * 1024 * 1024


class NodeFiles:
    def __init__(self, node_root: Callable[[str, str], Path]) -> None:
        """``node_root(pool_id, node_id)`` is the folder holding that node's file system."""
        self.node_root = node_root

    def _base(self, where: FileLocation) -> Path:
        root = self.node_root(where.pool_id, where.node_id).resolve()
        return (root / where.root).resolve() if where.root else root

    def _path(self, where: FileLocation, path: str) -> Path:
        base = self._base(where)
        try:
            target = (base / path.replace("\\", "/").lstrip("/")).resolve()
        except (OSError, RuntimeError):   # a symlink loop
            raise not_found("FileNotFound", "file", path) from None
        if target != base and base not in target.parents:
            raise not_found("FileNotFound", "file", path)
        if not target.exists():
            raise not_found("FileNotFound", "file", path)
        return target

    def _info(self, base: Path, path: Path, status: os.stat_result | None = None) -> FileInfo:
        status = status or path.stat()
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
            try:
                entries = list(base.iterdir())
            except OSError:
                return []
        found = []
        for entry in entries:
            info = self._listable(base, entry)
            if info is not None:
                found.append(info)
        return found

    def _listable(self, base: Path, entry: Path) -> FileInfo | None:
        """The entry's info, or None if it cannot be shown safely (see the module docstring)."""
        try:
            entry.relative_to(base).as_posix().encode("utf-8")
        except UnicodeEncodeError:   # a name that is not UTF-8 (surrogate-escaped by os)
            return None
        try:
            status = entry.lstat()
            if stat.S_ISLNK(status.st_mode):
                target = entry.resolve()
                if target != base and base not in target.parents:
                    return None
                status = target.stat()
        except (OSError, RuntimeError):   # gone meanwhile, dangling, or a symlink loop
            return None
        return self._info(base, entry, status)

    def stat(self, where: FileLocation, path: str) -> FileInfo:
        base = self._base(where)
        target = self._path(where, path)
        try:
            return self._info(base, target)
        except OSError:
            raise not_found("FileNotFound", "file", path) from None

    def read(self, where: FileLocation, path: str, start: int, end: int | None) -> bytes:
        target = self._path(where, path)
        if target.is_dir():
            raise BatchError("OperationInvalidForCurrentState", "The specified path is a directory.",
                             [("FilePath", path)])
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP):
                raise not_found("FileNotFound", "file", path) from None
            raise BatchError("OperationInvalidForCurrentState", "The file cannot be read.",
                             [("FilePath", path), ("Reason", error.strerror or "")]) from None
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise BatchError("OperationInvalidForCurrentState",
                                 "The specified path is not a regular file (a pipe, socket or device): it cannot "
                                 "be read.", [("FilePath", path)])
            size = status.st_size
            if start > 0 and start >= size:
                raise BatchError("InvalidRange", "The range specified is invalid for the current size of the "
                                 "resource.", [("Range", f"bytes={start}-{'' if end is None else end}"),
                                               ("Size", str(size))])
            stop = size if end is None else min(end + 1, size)
            if stop - start > MAX_READ_BYTES:
                raise BatchError("RequestBodyTooLarge", "The requested range is too large; ask for a smaller "
                                 "ocp-range.", [("MaxLimit", str(MAX_READ_BYTES))])
            handle.seek(start)
            return handle.read(stop - start)

    def delete(self, where: FileLocation, path: str, recursive: bool) -> None:
        target = self._path(where, path)
        if target == self._base(where):
            raise BatchError("InvalidUri", "The file path names the directory itself, which cannot be deleted.",
                             [("FilePath", path)])
        if target.is_dir() and not target.is_symlink():
            if not recursive and any(target.iterdir()):
                raise BatchError("OperationInvalidForCurrentState",
                                 "The directory is not empty; set recursive=true to delete it.", [("FilePath", path)])
            shutil.rmtree(target)
        else:
            target.unlink()
