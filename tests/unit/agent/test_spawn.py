"""spawn: what Popen(cwd, env, stdin=DEVNULL, stdout, stderr, start_new_session) does, for less CPU."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from openbatch.agent import spawn as spawn_module
from openbatch.agent.spawn import spawn

SH = "/bin/sh"


def run(tmp_path: Path, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o664)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o664)
    try:
        pid = spawn(argv, str(cwd or tmp_path), env if env is not None else {"PATH": "/usr/bin:/bin"}, out, err)
    finally:
        os.close(out)
        os.close(err)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return code, out_path.read_text(), err_path.read_text()


def write_script(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_cwd_env_outputs_and_own_session(tmp_path: Path) -> None:
    work = tmp_path / "wd"
    work.mkdir()
    before = os.getcwd()
    code, out, err = run(tmp_path, [SH, "-c", 'pwd; echo "$ONLY"; env | wc -l; echo oops >&2; '
                                              'ps -o sid= -p $$ | tr -d " "; echo $$; exit 3'],
                         env={"ONLY": "me", "PATH": "/usr/bin:/bin"}, cwd=work)
    lines = out.splitlines()
    assert code == 3 and err == "oops\n"
    assert lines[0] == str(work) and lines[1] == "me"
    assert int(lines[2]) <= 4  # ONLY, PATH and what sh itself adds (PWD): nothing of ours
    assert lines[3] == lines[4]  # the leader of its own session
    assert os.getcwd() == before  # the agent's directory is back


def test_stdin_is_dev_null_and_only_0_1_2_are_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawn_module, "_sealed", False)  # as in a process that has not spawned yet
    leaked = os.open(tmp_path, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # made inheritable before the first spawn: sealed by it
    try:
        code, out, _ = run(tmp_path, [SH, "-c", "readlink /proc/self/fd/0; ls /proc/self/fd"])
    finally:
        os.close(leaked)
    lines = out.split()
    assert code == 0 and lines[0] == "/dev/null"
    assert sorted(int(fd) for fd in lines[1:]) == [0, 1, 2, 3]  # 3: the directory ls reads


def test_sigpipe_is_default_in_the_child(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, [SH, "-c", "grep SigIgn /proc/self/status"])
    ignored = int(out.split()[1], 16)
    assert code == 0 and not ignored & (1 << (13 - 1)) and not ignored & (1 << (25 - 1))


def test_commands_are_found_on_the_tasks_path_not_the_agents(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(bin_dir / "mytool", "#!/bin/sh\necho found me\n")
    code, out, _ = run(tmp_path, ["mytool"], env={"PATH": f"/nonexistent:{bin_dir}"})
    assert (code, out) == (0, "found me\n")
    with pytest.raises(FileNotFoundError):
        run(tmp_path, ["mytool"], env={"PATH": "/usr/bin:/bin"})


def test_relative_programs_resolve_in_the_working_directory(tmp_path: Path) -> None:
    work = tmp_path / "wd"
    work.mkdir()
    write_script(work / "run.sh", "#!/bin/sh\necho relative\n")
    assert run(tmp_path, ["./run.sh"], cwd=work)[:2] == (0, "relative\n")


def test_launch_errors(tmp_path: Path) -> None:
    write_script(tmp_path / "data.sh", "#!/bin/sh\n", stat.S_IRUSR | stat.S_IWUSR)
    no_shebang = write_script(tmp_path / "plain", "echo hi\n")
    with pytest.raises(FileNotFoundError):
        run(tmp_path, ["/no/such/program"])
    with pytest.raises(FileNotFoundError):
        run(tmp_path, ["no-such-program-anywhere"])
    with pytest.raises(PermissionError):
        run(tmp_path, ["data.sh"], env={"PATH": str(tmp_path)})  # on the PATH but not executable
    with pytest.raises(OSError) as format_error:
        run(tmp_path, [str(no_shebang)])
    assert format_error.value.errno == 8  # ENOEXEC
    with pytest.raises(ValueError):
        run(tmp_path, [SH, "-c", "true"], env={"BAD": "a\x00b"})
    with pytest.raises(ValueError):
        run(tmp_path, [])


@pytest.mark.skipif(os.geteuid() != 0, reason="only root starts processes as another user")
def test_another_user_is_that_user_and_nothing_more(tmp_path: Path) -> None:
    from openbatch.agent.accounts import Credentials

    out = os.open(tmp_path / "out.txt", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    before = (os.getresuid(), os.getresgid(), os.getgroups())
    try:
        pid = spawn([SH, "-c", "id -u; id -g; id -G; grep -E '^(Uid|Gid|CapPrm|CapEff):' /proc/self/status; "
                     "python3 -c 'import os; os.setuid(0)' 2>/dev/null || echo cannot-become-root"],
                    str(tmp_path), {"PATH": "/usr/bin:/bin"}, out, out, Credentials("nobody", 65534, 65534, (65534, 100)))
    finally:
        os.close(out)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert (os.getresuid(), os.getresgid(), os.getgroups()) == before   # the agent is root as it was
    lines = (tmp_path / "out.txt").read_text().split("\n")
    assert lines[:3] == ["65534", "65534", "65534 100"]
    assert lines[3].split() == ["Uid:", "65534", "65534", "65534", "65534"]
    assert lines[4].split() == ["Gid:", "65534", "65534", "65534", "65534"]
    assert lines[5].split()[1] == lines[6].split()[1] == "0000000000000000"
    assert lines[7] == "cannot-become-root"
