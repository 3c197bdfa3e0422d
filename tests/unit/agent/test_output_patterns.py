"""Azure's output file patterns: which files they name, and the blob names they get."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openbatch.agent.output_patterns import Match, PatternError, blob_name, expand_variables, has_wildcard, matching_files


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    task = tmp_path / "node" / "workitems" / "job" / "job-1" / "t"
    files = ["stdout.txt", "stderr.txt", "wd/a.txt", "wd/b.log", "wd/.hidden.txt", "wd/sub/c.txt",
             "wd/sub/deep/d.txt", "wd/.dot/e.txt", "wd/abc*", "wd/x1.dat", "wd/x2.dat", "wd/y3.dat"]
    for name in files:
        (task / name).parent.mkdir(parents=True, exist_ok=True)
        (task / name).write_text(name)
    return task


def names(pattern: str, task: Path) -> list[str]:
    return [m.relative for m in matching_files(pattern, str(task / "wd"), str(task))]


@pytest.mark.parametrize("pattern, expected", [
    ("a.txt", ["a.txt"]),
    ("*.txt", ["a.txt"]),                                   # a dotfile needs an explicit dot
    (".*.txt", [".hidden.txt"]),
    ("**/*.txt", ["a.txt", "sub/c.txt", "sub/deep/d.txt"]),  # ** is any number of directories, none hidden
    ("sub/**/*.txt", ["c.txt", "deep/d.txt"]),
    ("x?.dat", ["x1.dat", "x2.dat"]),
    ("[xy][13].dat", ["x1.dat", "y3.dat"]),
    ("[!x]*.dat", ["y3.dat"]),
    ("[a-b].*", ["a.txt", "b.log"]),
    ("abc[*]", ["abc*"]),                                   # brackets escape a wildcard
    ("../std*.txt", ["stderr.txt", "stdout.txt"]),          # the task directory is fair game
    ("missing.txt", []),
    ("nothing-*", []),
])
def test_patterns(task_dir: Path, pattern: str, expected: list[str]) -> None:
    assert names(pattern, task_dir) == expected


def test_absolute_patterns_inside_the_task_directory(task_dir: Path) -> None:
    assert names(f"{task_dir}/wd/sub/*.txt", task_dir) == ["c.txt"]


@pytest.mark.parametrize("pattern", ["../../x", "../../*", "/etc/passwd", "/etc/*", "..", "../.."])
def test_patterns_that_leave_the_task_directory(task_dir: Path, pattern: str) -> None:
    with pytest.raises(PatternError):
        matching_files(pattern, str(task_dir / "wd"), str(task_dir))


def test_symlinks_out_of_the_task_directory_are_skipped(task_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / "secret.txt"
    secret.write_text("no")
    os.symlink(secret, task_dir / "wd" / "leak.txt")
    os.symlink(elsewhere, task_dir / "wd" / "outside")
    os.symlink(elsewhere, task_dir / "wd" / "sub" / "outside")
    os.symlink(task_dir / "wd" / "a.txt", task_dir / "wd" / "alias.txt")
    assert names("*.txt", task_dir) == ["a.txt", "alias.txt"]
    assert names("leak.txt", task_dir) == []
    assert names("outside/**/*", task_dir) == []   # not walked: the symlinked directory leads out
    assert names("**/*.txt", task_dir) == ["a.txt", "alias.txt", "sub/c.txt", "sub/deep/d.txt"]


def test_blob_names() -> None:
    match = Match("/t/wd/sub/c.txt", "sub/c.txt")
    assert blob_name("**/*.txt", "results", match) == "results/sub/c.txt"
    assert blob_name("**/*.txt", None, match) == "sub/c.txt"
    assert blob_name("**/*.txt", "results/", match) == "results/sub/c.txt"
    one = Match("/t/wd/run.log", "run.log")
    assert blob_name("run.log", "logs/run-1.log", one) == "logs/run-1.log"
    assert blob_name("run.log", None, one) == "run.log"


def test_variables_and_wildcards() -> None:
    env = {"AZ_BATCH_TASK_DIR": "/n/t", "X": "x"}
    assert expand_variables("$AZ_BATCH_TASK_DIR/std*.txt", env) == "/n/t/std*.txt"
    assert expand_variables("${X}1/$UNKNOWN", env) == "x1/$UNKNOWN"
    assert has_wildcard("a/*.txt") and has_wildcard("a?") and has_wildcard("[ab]") and not has_wildcard("a/b.txt")
