"""Which files an OutputFile spec names, and the blob name each one gets (pure, no I/O but a walk).

Azure's rules (OutputFile.filePattern): a path relative to the task working directory, or
absolute; ``*`` matches 0 or more characters of a name, ``**`` any number of directories,
``?`` one character, ``[abc]``, ``[a-c]`` and ``[!abc]`` one character of (or not of) a set;
a name that starts with ``.`` is only matched by a pattern part that starts with ``.`` too;
brackets escape a wildcard (``abc[*]``); ``$var`` / ``${var}`` are expanded from the task's
environment first. Only ``/`` separates directories (Linux).

Here the files must lie in the task directory (``../stdout.txt`` from the working directory is
fine, ``../../x`` is not): a pattern that leads out of it is an upload error, and so is a file
that a symlink leads out of it. Directories reached through symlinks are not walked.

Blob names (OutputFileBlobContainerDestination.path): a pattern without wildcards names one
file, uploaded as ``path`` (its file name when ``path`` is omitted); a pattern with wildcards
uploads each file under the virtual directory ``path``, named by its path below the pattern's
last directory before the first wildcard.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

__all__ = ["PatternError", "Match", "blob_name", "expand_variables", "has_wildcard", "matching_files"]

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_WILDCARD = re.compile(r"[*?\[]")


class PatternError(ValueError):
    """The pattern cannot name files of this task (it leads out of the task directory)."""


@dataclass(frozen=True, slots=True)
class Match:
    path: str       # absolute path of the file
    relative: str   # its path below the pattern's base directory ("/"-separated)


def expand_variables(pattern: str, environment: Mapping[str, str]) -> str:
    """``$name`` and ``${name}`` replaced by their values; unknown names stay as written."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return environment.get(name, match.group(0))
    return _VARIABLE.sub(value, pattern)


def has_wildcard(pattern: str) -> bool:
    return _WILDCARD.search(pattern) is not None


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def _part_regex(part: str) -> str:
    """One path part of a pattern as a regex of one name: ``*``, ``?`` and ``[...]`` translated."""
    out = [] if part.startswith(".") else [r"(?!\.)"]
    i = 0
    while i < len(part):
        char = part[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = part.find("]", i + 1 if part[i:i + 1] in ("!", "]") else i)
            if end < 0:
                out.append(r"\[")
                continue
            body = part[i:end]
            i = end + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("^", r"\^")
            out.append(f"[{'^/' if negate else ''}{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _compile(parts: list[str]) -> re.Pattern[str]:
    pieces = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            pieces.append(r"(?:[^/.][^/]*/)*" if not last else r"(?:[^/.][^/]*/)*(?!\.)[^/]+")
        else:
            pieces.append(_part_regex(part) + ("" if last else "/"))
    return re.compile("".join(pieces) + r"\Z")


def matching_files(pattern: str, working_dir: str, task_dir: str) -> list[Match]:
    """The regular files ``pattern`` (variables already expanded) names, sorted by path.

    Raises :class:`PatternError` if the pattern leads out of ``task_dir``.
    """
    full = os.path.normpath(os.path.join(working_dir, pattern))
    if not _inside(full, task_dir) or full == task_dir:
        raise PatternError(f"The file pattern '{pattern}' leads outside the task directory.")
    real_task_dir = os.path.realpath(task_dir)
    if not has_wildcard(full):
        if os.path.isfile(full) and _inside(os.path.realpath(full), real_task_dir):
            return [Match(full, os.path.basename(full))]
        return []
    parts = full.split("/")
    first = next(i for i, part in enumerate(parts) if has_wildcard(part))
    base = "/".join(parts[:first]) or "/"
    if not _inside(os.path.realpath(base), real_task_dir):
        return []   # a symlink on the way leads out of the task directory
    matcher = _compile(parts[first:])
    found = []
    for directory, subdirs, files in os.walk(base):   # symlinked directories are not walked
        subdirs.sort()
        below = os.path.relpath(directory, base)
        prefix = "" if below == "." else below + "/"
        for name in files:
            relative = prefix + name
            if matcher.match(relative):
                path = os.path.join(directory, name)
                if os.path.isfile(path) and _inside(os.path.realpath(path), real_task_dir):
                    found.append(Match(path, relative))
    return sorted(found, key=lambda match: match.path)


def blob_name(pattern: str, destination_path: str | None, match: Match) -> str:
    """The blob a matched file is uploaded to (see the module docstring)."""
    path = (destination_path or "").strip("/")
    if not has_wildcard(pattern):
        return path or match.relative
    return f"{path}/{match.relative}" if path else match.relative
