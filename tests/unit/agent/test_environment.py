"""The task environment: a minimal base, the node layout variables, then the server's values."""

import os
from pathlib import Path

import pytest

from openbatch.agent.environment import DEFAULT_PATH, task_environment, task_paths
from openbatch.agent.runner import RunSpec


def make(root: Path, task_dir: str = "workitems/job1/job-1/task1", **kw) -> RunSpec:
    fields = {"environment": {"AZ_BATCH_TASK_ID": "task1", "AZ_BATCH_JOB_ID": "job1"}, **kw}
    return RunSpec(id="c1", kind="task", node_root=root, task_dir=task_dir, command_line="/bin/true",
                   **fields)


def test_layout_variables(tmp_path: Path) -> None:
    env = task_environment(make(tmp_path / "n1"))
    root = str(tmp_path / "n1")
    task = f"{root}/workitems/job1/job-1/task1"
    assert env["AZ_BATCH_NODE_ROOT_DIR"] == root
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == f"{root}/shared"
    assert env["AZ_BATCH_NODE_STARTUP_DIR"] == f"{root}/startup"
    assert env["AZ_BATCH_NODE_MOUNTS_DIR"] == f"{root}/fsmounts"
    assert env["AZ_BATCH_TASK_DIR"] == task
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == f"{task}/wd"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert env["AZ_BATCH_TASK_USER_IDENTITY"] == "PoolNonAdmin"
    assert env["AZ_BATCH_TASK_ID"] == "task1" and env["AZ_BATCH_JOB_ID"] == "job1"
    assert "AZ_BATCH_JOB_PREP_DIR" not in env and "AZ_BATCH_JOB_PREP_WORKING_DIR" not in env
    assert task_paths(make(tmp_path / "n1")) == (root, task, f"{task}/wd")


def test_paths_are_absolute_for_a_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = task_environment(make(Path("nodes/n1"), job_prep_dir="workitems/job1/job-1/jobpreparation"))
    paths = {k: v for k, v in env.items() if k.endswith("_DIR")}
    assert len(paths) >= 8
    for name, value in paths.items():
        assert os.path.isabs(value), name
        assert value.startswith(str(tmp_path / "nodes" / "n1")), name
    assert env["AZ_BATCH_JOB_PREP_DIR"] == str(tmp_path / "nodes/n1/workitems/job1/job-1/jobpreparation")
    assert env["AZ_BATCH_JOB_PREP_WORKING_DIR"] == env["AZ_BATCH_JOB_PREP_DIR"] + "/wd"


def test_start_task_directory_is_startup(tmp_path: Path) -> None:
    env = task_environment(make(tmp_path, task_dir="startup"))
    assert env["AZ_BATCH_TASK_DIR"] == env["AZ_BATCH_NODE_STARTUP_DIR"] == str(tmp_path / "startup")
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(tmp_path / "startup" / "wd")


def test_minimal_base_nothing_else_of_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBATCH_AGENT_SECRET", "s3cret")
    monkeypatch.setenv("PATH", "/opt/x/bin:/usr/bin:/bin")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("HOME", "/home/agent")
    env = task_environment(make(tmp_path))
    assert env["PATH"] == "/opt/x/bin:/usr/bin:/bin"
    assert env["LANG"] == "C.UTF-8" and "LC_ALL" not in env
    assert env["HOME"] == env["AZ_BATCH_TASK_WORKING_DIR"]
    assert "OPENBATCH_AGENT_SECRET" not in env
    assert {k for k in env if not k.startswith("AZ_BATCH_")} == {"PATH", "HOME", "LANG"}


def test_default_path_when_the_agent_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH")
    assert task_environment(make(tmp_path))["PATH"] == DEFAULT_PATH


def test_server_values_win(tmp_path: Path) -> None:
    env = task_environment(make(tmp_path, environment={
        "HOME": "/home/batch", "PATH": "/custom", "AZ_BATCH_TASK_USER_IDENTITY": "TaskAdmin",
        "AZ_BATCH_NODE_IS_DEDICATED": "false", "MY_SETTING": "a b $c",
    }))
    assert env["HOME"] == "/home/batch" and env["PATH"] == "/custom"
    assert env["AZ_BATCH_TASK_USER_IDENTITY"] == "TaskAdmin"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "false"
    assert env["MY_SETTING"] == "a b $c"
