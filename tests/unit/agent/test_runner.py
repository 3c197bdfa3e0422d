"""The task runner: real processes, their files, environment, failures, timeouts and termination."""

import asyncio
import os
import stat
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from openbatch.agent import processes
from openbatch.agent.runner import RunResult, RunSpec, run

TASK_DIR = "workitems/job1/job-1/task1"
# a shell (pid in wd/shpid) waiting for its background child (pid in wd/pid)
BACKGROUND_SLEEP = "/bin/sh -c 'echo $$ > shpid; sleep 30 & echo $! > pid; wait'"


def make(tmp_path: Path, command: str, **kw: object) -> RunSpec:
    fields: dict = {"environment": {"AZ_BATCH_TASK_ID": "task1", "AZ_BATCH_JOB_ID": "job1", "MY_VAR": "mine"}}
    fields.update(kw)
    fields.setdefault("task_dir", TASK_DIR)
    return RunSpec(id="cmd-1", kind="task", node_root=tmp_path / "node", command_line=command, **fields)


def go(spec: RunSpec, **kw: object) -> RunResult:
    return asyncio.run(run(spec, **kw))


def task_path(tmp_path: Path, *parts: str) -> Path:
    return tmp_path.joinpath("node", TASK_DIR, *parts)


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} never written")


async def wait_for_file_async(path: Path, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never written")


def gone(pid: int, timeout: float = 3.0) -> bool:
    """The process no longer exists. An orphan that died and was reparented to an init that
    has not reaped it yet (a zombie not ours) counts as gone; our own children must be reaped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields["State"].startswith("Z") and int(fields["PPid"]) != os.getpid():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# --- exit codes and output ---------------------------------------------------------------------

def test_success(tmp_path: Path) -> None:
    calls: list[datetime] = []

    async def started(when: datetime) -> None:
        calls.append(when)

    before = datetime.now(timezone.utc)
    result = go(make(tmp_path, "/bin/true"), started=started)
    assert result.exit_code == 0 and result.result == "success" and result.failure is None
    assert not result.pre_processing_error
    assert calls == [result.start_time]
    assert result.start_time.tzinfo is not None and result.start_time.utcoffset().total_seconds() == 0
    assert before <= result.start_time <= result.end_time <= datetime.now(timezone.utc)
    node = tmp_path / "node"
    for path in (node / "shared", node / "startup", task_path(tmp_path, "wd")):
        assert path.is_dir(), path
    assert task_path(tmp_path, "stdout.txt").read_bytes() == b""
    assert task_path(tmp_path, "stderr.txt").read_bytes() == b""


def test_nonzero_exit(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/bin/sh -c 'exit 3'"))
    assert result.exit_code == 3 and result.result == "failure" and not result.pre_processing_error
    assert result.failure == {
        "category": "usererror", "code": "FailureExitCode",
        "message": "The task exited with an exit code representing a failure",
        "details": [{"name": "Message", "value": "The task exited with exit code 3"}],
    }


def test_killed_by_a_signal_reports_128_plus_n(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/bin/sh -c 'kill -9 $$'"))
    assert result.exit_code == 137 and result.failure["code"] == "FailureExitCode"


def test_stdout_and_stderr_files(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/bin/sh -c 'echo out; echo err >&2; echo more'"))
    assert result.exit_code == 0
    assert task_path(tmp_path, "stdout.txt").read_text() == "out\nmore\n"
    assert task_path(tmp_path, "stderr.txt").read_text() == "err\n"
    # a new attempt in the same directory starts with fresh files
    go(make(tmp_path, "/bin/echo again"))
    assert task_path(tmp_path, "stdout.txt").read_text() == "again\n"
    assert task_path(tmp_path, "stderr.txt").read_text() == ""


def test_output_is_readable_while_running(tmp_path: Path) -> None:
    async def scenario() -> None:
        job = asyncio.create_task(run(make(tmp_path, "/bin/sh -c 'echo early; sleep 30'")))
        path = task_path(tmp_path, "stdout.txt")
        for _ in range(500):
            if path.exists() and path.read_text() == "early\n":
                break
            await asyncio.sleep(0.01)
        assert path.read_text() == "early\n"
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(scenario())


def test_cwd_is_the_working_directory(tmp_path: Path) -> None:
    assert go(make(tmp_path, "/bin/sh -c 'pwd; touch made-here'")).exit_code == 0
    wd = task_path(tmp_path, "wd")
    assert task_path(tmp_path, "stdout.txt").read_text().strip() == os.path.realpath(wd)
    assert (wd / "made-here").exists()


def test_stdin_is_empty(tmp_path: Path) -> None:
    assert go(make(tmp_path, "/bin/cat")).exit_code == 0
    assert task_path(tmp_path, "stdout.txt").read_text() == ""


# --- environment and command line --------------------------------------------------------------

def test_environment(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/usr/bin/env", job_prep_dir="workitems/job1/job-1/jobpreparation"))
    assert result.exit_code == 0
    env = dict(line.split("=", 1) for line in task_path(tmp_path, "stdout.txt").read_text().splitlines())
    root = str(tmp_path / "node")
    expected_dirs = {
        "AZ_BATCH_NODE_ROOT_DIR": root,
        "AZ_BATCH_NODE_SHARED_DIR": f"{root}/shared",
        "AZ_BATCH_NODE_STARTUP_DIR": f"{root}/startup",
        "AZ_BATCH_TASK_DIR": f"{root}/{TASK_DIR}",
        "AZ_BATCH_TASK_WORKING_DIR": f"{root}/{TASK_DIR}/wd",
        "AZ_BATCH_JOB_PREP_DIR": f"{root}/workitems/job1/job-1/jobpreparation",
        "AZ_BATCH_JOB_PREP_WORKING_DIR": f"{root}/workitems/job1/job-1/jobpreparation/wd",
    }
    for name, value in expected_dirs.items():
        assert env[name] == value and os.path.isabs(env[name]), name
    assert env["AZ_BATCH_TASK_ID"] == "task1" and env["AZ_BATCH_JOB_ID"] == "job1" and env["MY_VAR"] == "mine"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert env["HOME"] == f"{root}/{TASK_DIR}/wd"
    assert "PYTEST_CURRENT_TEST" not in env  # nothing of the agent's own environment


def test_variables_are_not_expanded_without_a_shell(tmp_path: Path) -> None:
    go(make(tmp_path, "/bin/echo $AZ_BATCH_TASK_DIR ${MY_VAR} ~ *"))
    assert task_path(tmp_path, "stdout.txt").read_text() == "$AZ_BATCH_TASK_DIR ${MY_VAR} ~ *\n"


def test_variables_are_expanded_by_an_explicit_shell(tmp_path: Path) -> None:
    go(make(tmp_path, "/bin/sh -c 'echo $MY_VAR $AZ_BATCH_TASK_DIR'"))
    assert task_path(tmp_path, "stdout.txt").read_text() == f"mine {tmp_path}/node/{TASK_DIR}\n"


def test_quoting(tmp_path: Path) -> None:
    go(make(tmp_path, "/usr/bin/printf '[%s]' 'a  b' \"c d\" e\\ f | >x"))
    assert task_path(tmp_path, "stdout.txt").read_text() == "[a  b][c d][e f][|][>x]"


def test_program_found_through_path(tmp_path: Path) -> None:
    assert go(make(tmp_path, "true")).result == "success"


def test_relative_program_in_the_working_directory(tmp_path: Path) -> None:
    wd = task_path(tmp_path, "wd")
    wd.mkdir(parents=True)
    (wd / "job.sh").write_text("#!/bin/sh\necho script ran \"$1\"\n")
    (wd / "job.sh").chmod(0o755)
    assert go(make(tmp_path, "./job.sh arg")).exit_code == 0
    assert task_path(tmp_path, "stdout.txt").read_text() == "script ran arg\n"


# --- launch and pre-processing failures --------------------------------------------------------

@pytest.mark.parametrize("command", ["/nonexistent/program", "no-such-program-openbatch", "./missing.sh"])
def test_program_not_found(tmp_path: Path, command: str) -> None:
    result = go(make(tmp_path, command))
    assert result.exit_code is None and result.result == "failure" and not result.pre_processing_error
    assert result.failure["code"] == "CommandProgramNotFound" and result.failure["category"] == "usererror"
    assert result.failure["message"]


def test_not_executable(tmp_path: Path) -> None:
    wd = task_path(tmp_path, "wd")
    wd.mkdir(parents=True)
    (wd / "data.txt").write_text("x")
    (wd / "data.txt").chmod(0o644)
    result = go(make(tmp_path, "./data.txt"))
    assert result.exit_code is None and not result.pre_processing_error
    assert result.failure["code"] == "CommandLaunchFailed"


@pytest.mark.parametrize("command", ["", "   ", "/bin/echo 'unbalanced"])
def test_bad_command_line(tmp_path: Path, command: str) -> None:
    result = go(make(tmp_path, command))
    assert result.exit_code is None and result.result == "failure" and not result.pre_processing_error
    assert result.failure["code"] == "CommandLaunchFailed"
    assert result.start_time <= result.end_time


def test_directory_creation_failure(tmp_path: Path) -> None:
    (tmp_path / "node").write_text("a file where the node root should be")
    result = go(make(tmp_path, "/bin/true"))
    assert result.pre_processing_error and result.exit_code is None and result.result == "failure"
    assert result.failure["code"] == "ResourceDirectoryCreateFailed"
    assert result.failure["category"] == "usererror"


def test_task_directory_outside_the_node_root(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/bin/true", task_dir="../elsewhere"))
    assert result.pre_processing_error and result.failure["code"] == "ResourceDirectoryCreateFailed"
    assert not (tmp_path / "elsewhere").exists()


# --- resource files ----------------------------------------------------------------------------

class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body, status = (b"#!/bin/sh\necho downloaded\n", 200) if self.path == "/run.sh" else (b"", 404)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_resource_files_are_downloaded_before_start(tmp_path: Path, server: str) -> None:
    files = [{"httpUrl": f"{server}/run.sh", "filePath": "bin/run.sh"}]
    result = go(make(tmp_path, "bin/run.sh", resource_files=files))
    assert result.result == "success", result.failure
    assert task_path(tmp_path, "stdout.txt").read_text() == "downloaded\n"
    assert stat.S_IMODE(task_path(tmp_path, "wd", "bin", "run.sh").stat().st_mode) == 0o770


def test_resource_file_failure_is_a_pre_processing_error(tmp_path: Path, server: str) -> None:
    started: list[datetime] = []

    async def on_start(when: datetime) -> None:
        started.append(when)

    files = [{"httpUrl": f"{server}/missing", "filePath": "x"}]
    result = go(make(tmp_path, "/bin/true", resource_files=files), started=on_start)
    assert result.pre_processing_error and result.exit_code is None and result.result == "failure"
    assert result.failure["code"] == "BlobNotFound" and result.failure["category"] == "usererror"
    assert started == [] and not task_path(tmp_path, "stdout.txt").exists()


def test_refused_resource_path_is_a_pre_processing_error(tmp_path: Path) -> None:
    files = [{"httpUrl": "http://127.0.0.1:9/x", "filePath": "../../x"}]
    result = go(make(tmp_path, "/bin/true", resource_files=files))
    assert result.pre_processing_error and result.failure["code"] == "ResourceFileWriteFailed"


# --- wall clock, cancellation, no leaks --------------------------------------------------------

def test_max_wall_clock_kills_the_process_group(tmp_path: Path) -> None:
    began = time.monotonic()
    result = go(make(tmp_path, BACKGROUND_SLEEP, max_wall_clock=0.5))
    elapsed = time.monotonic() - began
    assert 0.4 < elapsed < 3.0
    assert result.result == "failure" and not result.pre_processing_error
    assert result.failure == {"category": "usererror", "code": "MaxWallClockTimeExpiry",
                              "message": "The task exceeded the maximum wall clock time"}
    assert result.exit_code == 128 + 15  # the shell, killed by SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(int(wait_for_file(task_path(tmp_path, "wd", "shpid"))), 0)
    assert gone(int(wait_for_file(task_path(tmp_path, "wd", "pid"))))


def test_wall_clock_not_reached(tmp_path: Path) -> None:
    result = go(make(tmp_path, "/bin/sh -c 'exit 0'", max_wall_clock=10))
    assert result.result == "success" and result.failure is None


def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    wd = task_path(tmp_path, "wd")

    async def scenario() -> tuple[int, int]:
        job = asyncio.create_task(run(make(tmp_path, BACKGROUND_SLEEP)))
        grandchild = await wait_for_file_async(wd / "pid")
        shell = await wait_for_file_async(wd / "shpid")
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        return shell, grandchild

    began = time.monotonic()
    shell, grandchild = asyncio.run(scenario())
    assert time.monotonic() - began < 3.0
    with pytest.raises(ProcessLookupError):  # the shell was our child: reaped, no zombie
        os.kill(shell, 0)
    assert gone(grandchild)


def test_cancellation_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "KILL_GRACE_SECONDS", 0.3)
    wd = task_path(tmp_path, "wd")
    command = "/bin/sh -c 'trap \"\" TERM; echo $$ > shpid; sleep 30 & echo $! > pid; wait; wait'"

    async def scenario() -> tuple[int, int, float]:
        job = asyncio.create_task(run(make(tmp_path, command)))
        grandchild = await wait_for_file_async(wd / "pid")
        shell = await wait_for_file_async(wd / "shpid")
        job.cancel()
        began = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await job
        return shell, grandchild, time.monotonic() - began

    shell, grandchild, took = asyncio.run(scenario())
    assert 0.25 < took < 2.0  # SIGTERM ignored: SIGKILL after the grace period
    with pytest.raises(ProcessLookupError):
        os.kill(shell, 0)
    assert gone(grandchild)


def test_failing_started_callback_kills_the_process(tmp_path: Path) -> None:
    async def broken(when: datetime) -> None:
        raise RuntimeError("cannot report")

    with pytest.raises(RuntimeError, match="cannot report"):
        go(make(tmp_path, "/bin/sh -c 'echo $$ > shpid; exec sleep 30'"), started=broken)
    pid_file = task_path(tmp_path, "wd", "shpid")
    if pid_file.exists() and pid_file.read_text().strip():
        assert gone(int(pid_file.read_text()))


def test_many_concurrent_runs_without_threads(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    children_before = set(our_children())  # other tests' servers may have agent processes of their own
    peak: list[int] = []

    async def scenario() -> list[RunResult]:
        async def one(i: int) -> RunResult:
            spec = make(tmp_path, "/bin/true", task_dir=f"workitems/job1/job-1/t{i}")
            result = await run(spec)
            peak.append(threading.active_count())
            return result

        return await asyncio.gather(*(one(i) for i in range(50)))

    began = time.monotonic()
    results = asyncio.run(scenario())
    assert time.monotonic() - began < 10.0
    assert all(r.result == "success" and r.exit_code == 0 for r in results)
    # waiting on a process starts no thread (a few may come and go in servers other tests left running)
    assert max(peak) - threads_before < 5
    assert set(our_children()) <= children_before  # every process reaped: no zombies


def our_children() -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.append(int(entry.name))
    return children


def test_fallback_without_pidfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    assert go(make(tmp_path, "/bin/sh -c 'exit 4'")).exit_code == 4
    result = go(make(tmp_path, "/bin/sh -c 'sleep 30'", max_wall_clock=0.2))
    assert result.failure["code"] == "MaxWallClockTimeExpiry" and result.exit_code == 143


def test_a_task_directory_that_is_a_link_is_never_followed(tmp_path: Path) -> None:
    """A subtask's directory lies in its task's directory, which the task's account may write to: a link put
    there (by an earlier attempt) must not take root's directories and files anywhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    task_path(tmp_path).mkdir(parents=True)
    task_path(tmp_path, "2").symlink_to(elsewhere)
    result = go(make(tmp_path, "/bin/true", task_dir=f"{TASK_DIR}/2"))
    assert result.failure is not None and result.failure["code"] == "ResourceDirectoryCreateFailed"
    assert result.pre_processing_error and list(elsewhere.iterdir()) == []
