"""What a node is told to run: the ``run`` command for a task, a job preparation or
release task, or a start task, with its directory and environment as on Azure's Linux nodes.

The agent adds the directory variables (AZ_BATCH_NODE_ROOT_DIR, AZ_BATCH_TASK_DIR, ...);
the identity variables come from here.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from ..protocol import KillCommand, ProceedCommand, RunCommand, RunMultiInstance
from .containers import run_container
from .identities import run_user
from .validation import UNLIMITED_DURATION, parse_duration

Json = dict[str, Any]
Kind = Literal["task", "subtask", "preparation", "release", "start"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Where a command runs: which account (and its URL), pool and node."""

    account: str
    account_url: str
    pool_id: str
    node_id: str
    #: The pool's body: its ``userAccounts`` (what a ``userIdentity`` may name), its containerConfiguration.
    pool: Json | None = None


_RUN_SOURCE = secrets.token_hex(6)   # this process's own: ids stay unique across restarts and servers
_run_numbers = itertools.count(1)


def new_run_id(prefix: str) -> str:
    """A run id never used before (``prefix`` names the kind: t, p, r, s); a counter after a random
    per-process part, as a random id per run costs a getrandom call."""
    return f"{prefix}-{_RUN_SOURCE}{next(_run_numbers):x}"


def task_dir(job_id: str, task_id: str) -> str:
    """The task's directory relative to the node root, as on Azure Linux nodes."""
    return f"workitems/{job_id}/job-1/{task_id}"


def wall_clock_seconds(duration: str | None) -> float | None:
    """A maxWallClockTime in seconds; None when unlimited."""
    return _seconds(duration)


def _seconds(duration: str | None) -> float | None:
    if not duration or duration == UNLIMITED_DURATION:
        return None
    return parse_duration(duration, "maxWallClockTime").total_seconds()


def _settings(*lists: list[Json] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for settings in lists:
        for item in settings or ():
            env[item["name"]] = item.get("value") or ""
    return env


def _base_env(who: Identity) -> dict[str, str]:
    return {
        "AZ_BATCH_ACCOUNT_NAME": who.account,
        "AZ_BATCH_ACCOUNT_URL": who.account_url,
        "AZ_BATCH_POOL_ID": who.pool_id,
        "AZ_BATCH_NODE_ID": who.node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true",
    }


def _run(run_id: str, kind: Kind, who: Identity, spec: Json, env: dict[str, str], directory: str,
         wall_clock: float | None, job_prep_dir: str | None = None) -> RunCommand:
    return RunCommand(id=run_id, kind=kind, nodeId=who.node_id, commandLine=spec["commandLine"], environment=env,
                      resourceFiles=spec.get("resourceFiles", []), outputFiles=spec.get("outputFiles", []),
                      taskDir=directory, maxWallClockSeconds=wall_clock, jobPrepDir=job_prep_dir,
                      user=run_user(spec.get("userIdentity"), (who.pool or {}).get("userAccounts")),
                      container=run_container(spec.get("containerSettings"), who.pool, must_match=kind == "task"))


def _prep_dir(job: Json) -> str | None:
    prep = job.get("jobPreparationTask")
    return task_dir(job["id"], prep["id"]) if prep else None


def node_info(pool_id: str, node_id: str, job_id: str, task_id: str) -> Json:
    """A task's nodeInfo on the node it runs on (as new_node_body names the node)."""
    return {"affinityId": f"TVM:{node_id}", "poolId": pool_id, "nodeId": node_id,
            "taskRootDirectory": task_dir(job_id, task_id)}


def task_command(run_id: str, who: Identity, job: Json, task: Json, token: str | None = None) -> RunCommand:
    """``token``: the task's authentication token, when its authenticationTokenSettings ask for one."""
    env = {**_base_env(who), "AZ_BATCH_JOB_ID": job["id"], "AZ_BATCH_TASK_ID": task["id"],
           "AZ_BATCH_TASK_RETRY_COUNT": str(task.get("executionInfo", {}).get("retryCount", 0))}
    env.update(_settings(job.get("commonEnvironmentSettings"), task.get("environmentSettings")))
    if token is not None:
        env["AZ_BATCH_AUTHENTICATION_TOKEN"] = token
    wall_clock = _seconds(task.get("constraints", {}).get("maxWallClockTime"))
    command = _run(run_id, "task", who, task, env, task_dir(job["id"], task["id"]), wall_clock, _prep_dir(job))
    command.slots = int(task.get("requiredSlots", 1))
    return command


def instance_commands(run_ids: list[str], whos: list[Identity], addresses: list[str], job: Json, task: Json,
                      token: str | None = None) -> list[RunCommand]:
    """The runs of a multi-instance task's instances (domain/multi_instance.py), the primary's first: each
    with the host list of all, its own directory (a subtask's inside the task's) and the coordination."""
    from .multi_instance import environment, subtask_dir

    settings = task["multiInstanceSettings"]
    shared = task_dir(job["id"], task["id"])
    out = []
    for instance, (run_id, who) in enumerate(zip(run_ids, whos)):
        command = task_command(run_id, who, job, task, token)
        command.slots = 1   # (each instance takes one slot of its node)
        command.environment.update(environment(addresses, instance))
        command.multiInstance = RunMultiInstance(
            instance=instance, coordinationCommandLine=settings.get("coordinationCommandLine"),
            commonResourceFiles=settings.get("commonResourceFiles", []), sharedDir=shared)
        if instance:   # a subtask: the coordination only, in its own directory
            command.kind, command.commandLine = "subtask", ""
            command.resourceFiles, command.outputFiles = [], []
            command.taskDir = subtask_dir(shared, instance)
        out.append(command)
    return out


def proceed_command(run_id: str) -> ProceedCommand:
    return ProceedCommand(id=run_id)


def preparation_command(run_id: str, who: Identity, job: Json, retry_count: int) -> Json:
    prep = job["jobPreparationTask"]
    env = {**_base_env(who), "AZ_BATCH_JOB_ID": job["id"], "AZ_BATCH_TASK_ID": prep["id"],
           "AZ_BATCH_TASK_RETRY_COUNT": str(retry_count)}
    env.update(_settings(job.get("commonEnvironmentSettings"), prep.get("environmentSettings")))
    wall_clock = _seconds(prep.get("constraints", {}).get("maxWallClockTime"))
    return _run(run_id, "preparation", who, prep, env, task_dir(job["id"], prep["id"]), wall_clock, _prep_dir(job))


def release_command(run_id: str, who: Identity, job: Json) -> Json:
    release = job["jobReleaseTask"]
    env = {**_base_env(who), "AZ_BATCH_JOB_ID": job["id"], "AZ_BATCH_TASK_ID": release["id"],
           "AZ_BATCH_TASK_RETRY_COUNT": "0"}
    env.update(_settings(job.get("commonEnvironmentSettings"), release.get("environmentSettings")))
    wall_clock = _seconds(release.get("maxWallClockTime", "PT15M"))
    return _run(run_id, "release", who, release, env, task_dir(job["id"], release["id"]), wall_clock, _prep_dir(job))


def start_task_command(run_id: str, who: Identity, start_task: Json, retry_count: int) -> RunCommand:
    env = {**_base_env(who), "AZ_BATCH_TASK_RETRY_COUNT": str(retry_count)}
    env.update(_settings(start_task.get("environmentSettings")))
    return _run(run_id, "start", who, start_task, env, "startup", None)


def kill_command(run_id: str) -> KillCommand:
    return KillCommand(id=run_id)


def execution_info(state: str, start: str, retry_count: int, directory: str) -> Json:
    """The execution information of a preparation, release or start task that just started."""
    return {"state": state, "startTime": start, "retryCount": retry_count, "taskRootDirectory": directory}
