"""Container tasks: the task's command line runs inside a container of its image, as on Azure's Linux nodes.

The node's container engine is the ``docker`` command line (Podman's ``podman`` where no
``docker`` is installed; both speak the same commands). A run is:

1. the image, pulled when it is not on the node yet;
2. ``docker create`` with Azure's mapping (the whole node root directory at the same path, or the
   ``containerHostBatchBindMounts`` asked for; every task environment variable but ``PATH``; the
   task's working directory as the container's, unless ``containerImageDefault``), then the
   task's ``containerRunOptions``, the image and the command line;
3. ``docker start --attach``, started by the runner like any task process (its output goes to
   ``stdout.txt``/``stderr.txt``, its exit code is the container's);
4. ``docker kill`` when the run is terminated (the attached command line does not pass SIGKILL
   on), and ``docker rm`` when it is over, after its state is read for ``containerInfo``.

The container carries the task's environment, so the agent's reaper and the local provider find
its processes by their marks like any task's: nothing of a run outlives its agent. A node without
an engine fails the run (it never runs on the host instead).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..domain.containers import registry_for
from ..protocol import RunContainer
from .failures import TaskFailure

if TYPE_CHECKING:
    from .accounts import Credentials

__all__ = ["ContainerError", "ContainerRun", "engine", "ensure_image", "prefetch", "prepare", "remove_node_containers"]

#: Environment variables of the task not passed into the container (the image's own win).
_NOT_PASSED = frozenset({"PATH", "HOME"})
#: containerHostBatchBindMounts sources -> the directory under the node root (Task and JobPrep are the run's).
_NODE_PATHS = {"Shared": "shared", "Startup": "startup", "VfsMounts": "fsmounts", "Applications": "applications"}
_TIMEOUT = 600.0
LABEL = "org.openbatch.node"


class ContainerError(TaskFailure):
    """The container could not be made (no engine, no image, a bad option): the run fails, nothing ran."""


@dataclass(frozen=True, slots=True)
class ContainerRun:
    engine: str
    name: str
    container_id: str

    def start_argv(self) -> list[str]:
        return [self.engine, "start", "--attach", self.name]

    @staticmethod
    def start_env() -> dict[str, str]:
        """The engine's command line runs with the agent's environment, never the task's (root runs it)."""
        return dict(os.environ)

    def kill(self) -> None:
        _run([self.engine, "kill", self.name])

    def info(self) -> dict[str, Any]:
        """TaskContainerExecutionInformation: its id, its state and error as the engine says."""
        info: dict[str, Any] = {"containerId": self.container_id}
        done = _run([self.engine, "inspect", "--format", "{{json .State}}", self.name])
        if done.returncode == 0:
            try:
                state = json.loads(done.stdout)
            except ValueError:
                state = {}
            if state.get("Status"):
                info["state"] = state["Status"]
            if state.get("Error"):
                info["error"] = str(state["Error"])[:1000]
        return info

    def remove(self) -> None:
        _run([self.engine, "rm", "--force", self.name])


def engine() -> str | None:
    """The node's container engine command (docker, else podman), or None."""
    return shutil.which("docker") or shutil.which("podman")


def prepare(container: RunContainer, run_id: str, argv: list[str], env: Mapping[str, str], root: str, task_dir: str,
            working_dir: str, prep_dir: str | None, user: Credentials | None = None) -> ContainerRun:
    """Pull the image if needed and create the run's container (blocking: call from a thread). ``user``: the
    task's account, which the container runs as (None: the image's user, for admin identities)."""
    if container.error:
        raise ContainerError("ContainerSettingsMismatch", container.error)
    if container.imageName.startswith("-"):
        raise ContainerError("ContainerCreateFailed", f"'{container.imageName}' is not an image reference.")
    command = engine()
    if command is None:
        raise ContainerError("ContainerEngineUnavailable", "The node has no container engine (docker or podman): "
                             "the container task cannot run.")
    image = container.imageName
    ensure_image(command, image, container.registry)
    try:
        options = shlex.split(container.runOptions or "")
    except ValueError as error:
        raise ContainerError("ContainerCreateFailed", f"containerRunOptions cannot be read: {error}") from None
    name = "openbatch-" + run_id
    create = [command, "create", "--name", name, "--label", f"{LABEL}={root}", "--init"]
    for source, target, read_only in _mounts(container, root, task_dir, prep_dir):
        create += ["--volume", f"{source}:{target}" + (":ro" if read_only else "")]
    if user is not None:
        create += ["--user", f"{user.uid}:{user.gid}"]
    if (container.workingDirectory or "taskWorkingDirectory") == "taskWorkingDirectory":
        create += ["--workdir", working_dir]
    # The task's variables go through a file of the (root's) task directory: not in the command line, which
    # every user of the host may read, nor in the engine command's environment (LD_PRELOAD, DOCKER_HOST, ...).
    variables = {k: v for k, v in env.items() if k not in _NOT_PASSED}
    broken = next((k for k, v in variables.items() if "\n" in v or "\r" in v or "\0" in v), None)
    if broken is not None:
        raise ContainerError("ContainerCreateFailed", f"The environment variable {broken} has a line break: a "
                             "container cannot take it.")
    env_file = os.path.join(task_dir, ".container-env")
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{k}={v}\n" for k, v in variables.items())
    try:
        created = _run([*create, "--env-file", env_file, *options, "--", image, *argv])
    finally:
        os.unlink(env_file)
    if created.returncode != 0:
        raise ContainerError("ContainerCreateFailed", f"The container of image {image} could not be created.",
                             [("Message", _said(created))])
    return ContainerRun(command, name, created.stdout.strip())


def ensure_image(command: str, image: str, registry: Mapping[str, Any] | None) -> None:
    """The image on this node: pulled (with the registry's credentials, if any) when it is not here yet."""
    if _run([command, "image", "inspect", "--", image]).returncode == 0:
        return
    if registry and registry.get("username"):
        with tempfile.TemporaryDirectory(prefix="openbatch-registry-") as config:   # these credentials only
            server = registry.get("registryServer") or "docker.io"
            login = _run([command, "--config", config, "login", "--username", registry["username"],
                          "--password-stdin", *([] if server == "docker.io" else [server])],
                         stdin=str(registry.get("password") or ""))
            if login.returncode != 0:
                raise ContainerError("ContainerImagePullFailed", f"The image {image} could not be pulled: logging "
                                     f"in to the registry {server} failed.", [("Message", _said(login))])
            pulled = _run([command, "--config", config, "pull", "--", image])
    else:
        pulled = _run([command, "pull", "--", image])
    if pulled.returncode != 0:
        raise ContainerError("ContainerImagePullFailed", f"The image {image} could not be pulled.",
                             [("Message", _said(pulled))])


def prefetch(images: list[str], registries: list[dict[str, Any]]) -> None:
    """A container pool's containerImageNames, pulled before its node is ready (raises ContainerError)."""
    command = engine()
    if command is None:
        raise ContainerError("ContainerEngineUnavailable", "The node has no container engine (docker or podman) "
                             "for its pool's containerConfiguration.")
    for image in images:
        ensure_image(command, image, registry_for(image, registries))


def remove_node_containers(root: str) -> None:
    """Every container a node's runs left (an agent killed outright cannot remove them)."""
    command = engine()
    if command is None:
        return
    listed = _run([command, "ps", "--all", "--quiet", "--filter", f"label={LABEL}={root}"])
    ids = listed.stdout.split()
    if listed.returncode == 0 and ids:
        _run([command, "rm", "--force", *ids])


def _mounts(container: RunContainer, root: str, task_dir: str, prep_dir: str | None) -> list[tuple[str, str, bool]]:
    if container.bindMounts is None:
        return [(root, root, False)]
    mounts = []
    for entry in container.bindMounts:
        source = entry.get("source")
        path = {"Task": task_dir, "JobPrep": prep_dir}.get(source) if source in ("Task", "JobPrep") else (
            os.path.join(root, _NODE_PATHS[source]) if source in _NODE_PATHS else None)
        if path is not None:
            os.makedirs(path, exist_ok=True)
            mounts.append((path, path, bool(entry.get("isReadOnly"))))
    return mounts


def _run(argv: list[str], env: Mapping[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False,
                              env=dict(env) if env is not None else None, input=stdin,
                              stdin=subprocess.DEVNULL if stdin is None else None)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(argv, 125, "", str(error))


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stderr or done.stdout).strip()[-500:]
