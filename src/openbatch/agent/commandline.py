"""Split a task's command line into argv, the way an Azure Batch Linux node does.

Azure runs the command line *without* a shell on Linux: it is tokenised like a
POSIX shell tokenises words (single and double quotes, backslash escapes) and the
words are handed to ``execve``. There is no expansion of ``$VAR`` or ``~``, no
globbing, no pipes, no redirection, no comments: a task that wants any of that
asks for a shell itself (``/bin/sh -c '...'``). This is exactly
``shlex.split(text, posix=True)``; a fast path skips shlex's per-character loop
for the common command lines that contain no quote or backslash.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["CommandLineError", "split_command_line"]

# shlex (posix, whitespace_split) separates words on exactly these characters.
_WHITESPACE = re.compile(r"[ \t\r\n]+")
_SPECIAL = frozenset("'\"\\")


class CommandLineError(ValueError):
    """The command line cannot be turned into a program and its arguments."""


def split_command_line(text: str) -> list[str]:
    """``"a 'b c' d\\ e"`` -> ``["a", "b c", "d e"]``; raises :class:`CommandLineError`
    for an empty command line or unbalanced quotes / a trailing backslash."""
    if "\0" in text:
        raise CommandLineError("The command line contains a NUL character.")
    if _SPECIAL.isdisjoint(text):
        words = [word for word in _WHITESPACE.split(text) if word]
    else:
        try:
            words = shlex.split(text, posix=True)
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise CommandLineError(f"The command line cannot be parsed: {exc}.") from None
    if not words:
        raise CommandLineError("The command line is empty.")
    return words
