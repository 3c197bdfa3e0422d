"""Command lines are split like POSIX shell words, with no shell features at all."""

import shlex

import pytest

from openbatch.agent.commandline import CommandLineError, split_command_line


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("/bin/true", ["/bin/true"]),
        ("  prog   a\tb\nc\r ", ["prog", "a", "b", "c"]),
        ("/bin/sh -c 'echo $X'", ["/bin/sh", "-c", "echo $X"]),
        ('echo "a  b" c\\ d', ["echo", "a  b", "c d"]),
        ('echo "say \\"hi\\" \\$HOME"', ["echo", 'say "hi" \\$HOME']),
        ("echo 'it'\\''s'", ["echo", "it's"]),
        ("echo ''", ["echo", ""]),
        ("python3 x.py # not a comment", ["python3", "x.py", "#", "not", "a", "comment"]),
        ("echo $AZ_BATCH_TASK_DIR ~ *.txt a|b >out",
         ["echo", "$AZ_BATCH_TASK_DIR", "~", "*.txt", "a|b", ">out"]),
        ("naïve ärg", ["naïve", "ärg"]),
    ],
)
def test_split(text: str, argv: list[str]) -> None:
    assert split_command_line(text) == argv


@pytest.mark.parametrize(
    "text",
    ["a b c", "a\tb", "x  y\n", "a|b;c&&d", "$X ${Y} `z`", "a\x0bb", "a\x1cb", "é ü", "cmd --opt=1,2"],
)
def test_fast_path_matches_shlex(text: str) -> None:
    assert split_command_line(text) == shlex.split(text, posix=True)


@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n", "''x'", "echo 'unclosed", 'echo "unclosed', "echo trailing\\", "echo a\0b"]
)
def test_unusable_command_lines(text: str) -> None:
    with pytest.raises(CommandLineError):
        split_command_line(text)


def test_error_is_a_value_error() -> None:
    assert issubclass(CommandLineError, ValueError)
