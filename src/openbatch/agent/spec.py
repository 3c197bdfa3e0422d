"""What a run is (:class:`RunSpec`) and how it ended (:class:`RunResult`): the runner's input and output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from ..protocol import RunContainer, RunMultiInstance, RunUser

__all__ = ["RunResult", "RunSpec"]


@dataclass(frozen=True)
class RunSpec:
    id: str  # the command id (unique per run attempt)
    kind: Literal["task", "subtask", "preparation", "release", "start"]
    node_root: Path  # the node's root directory (AZ_BATCH_NODE_ROOT_DIR)
    task_dir: str  # relative to node_root, e.g. "workitems/job1/job-1/task1" ("startup" for start tasks)
    command_line: str
    environment: Mapping[str, str]  # server-provided: user environmentSettings + identity variables
    resource_files: Sequence[Mapping[str, Any]] = ()  # ResourceFile wire dicts
    output_files: Sequence[Mapping[str, Any]] = ()  # OutputFile wire dicts, uploaded after the process ends
    max_wall_clock: float | None = None  # seconds
    job_prep_dir: str | None = None  # relative task_dir of the job's preparation task on this node
    user: RunUser | None = None  # who it runs as (None: the pool's non-admin auto user)
    container: RunContainer | None = None  # the container it runs in (None: on the host)
    multi_instance: RunMultiInstance | None = None  # an instance of a multi-instance task (instances.py)


@dataclass(frozen=True)
class RunResult:
    start_time: datetime  # aware UTC: process start (or attempt start if it never started)
    end_time: datetime
    exit_code: int | None  # None if the process never started
    failure: dict | None  # TaskFailureInformation wire dict, or None
    result: Literal["success", "failure"]
    pre_processing_error: bool = False  # resource file / directory / launch failure
    container_info: dict | None = None  # TaskContainerExecutionInformation of a container run
