"""Which runs go into a container: a task's ``containerSettings`` on a pool's ``containerConfiguration``.

As the Swagger says: a task (and a job manager) of a container pool must have containerSettings,
and a task of another pool must not; a start, preparation or release task may run either way on a
container pool. A run that breaks the rule is sent with the reason (``RunContainer.error``) and
fails on its node with a user error; nothing runs on the host in its container's stead.
"""

from __future__ import annotations

from typing import Any

from ..protocol import RunContainer
from .errors import invalid_property

Json = dict[str, Any]


def pool_containers(pool: Json | None) -> Json | None:
    """The pool's containerConfiguration, if it runs containers."""
    return ((pool or {}).get("virtualMachineConfiguration") or {}).get("containerConfiguration")


def run_container(settings: Json | None, pool: Json | None, *, must_match: bool) -> RunContainer | None:
    """``must_match``: a task or job manager task (the others may run on the host of a container pool)."""
    configuration = pool_containers(pool)
    if settings is None:
        if configuration is not None and must_match:
            return RunContainer(error="The pool runs its tasks in containers (containerConfiguration): the task "
                                      "needs containerSettings.")
        return None
    if configuration is None:
        return RunContainer(imageName=settings.get("imageName", ""), error="The task has containerSettings but its "
                            "pool has no containerConfiguration: its nodes run no containers.")
    return RunContainer(imageName=settings["imageName"], runOptions=settings.get("containerRunOptions"),
                        workingDirectory=settings.get("workingDirectory"),
                        bindMounts=settings.get("containerHostBatchBindMounts"),
                        registry=settings.get("registry") or registry_for(settings["imageName"],
                                                                          configuration.get("containerRegistries")))


def registry_server(image: str) -> str:
    """The registry an image reference names (``docker.io`` when its first part is no host)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def registry_for(image: str, registries: list[Json] | None) -> Json | None:
    """The pool's credentials for the image's registry, if it has them."""
    server = registry_server(image)
    return next((r for r in registries or () if (r.get("registryServer") or "docker.io").lower() == server), None)


_WORKING_DIRECTORIES = ("taskWorkingDirectory", "containerImageDefault")
_HOST_PATHS = ("Shared", "Startup", "VfsMounts", "Task", "JobPrep", "Applications")
_TYPES = ("dockerCompatible", "criCompatible")


def check_container_settings(settings: Json | None, prefix: str) -> None:
    """A task's containerSettings: an image, a known working directory and known mount sources."""
    if settings is None:
        return
    where = f"{prefix}/containerSettings".lstrip("/")
    image = settings.get("imageName")
    if not _reference(image):
        raise invalid_property(f"{where}/imageName", image, _REFERENCE_RULE)
    _check_registry(settings.get("registry"), f"{where}/registry")
    directory = settings.get("workingDirectory")
    if directory is not None and directory not in _WORKING_DIRECTORIES:
        raise invalid_property(f"{where}/workingDirectory", directory, f"Must be one of {', '.join(_WORKING_DIRECTORIES)}.")
    options = settings.get("containerRunOptions")
    if options is not None and not isinstance(options, str):
        raise invalid_property(f"{where}/containerRunOptions", options, "Must be a string.")
    for index, mount in enumerate(settings.get("containerHostBatchBindMounts") or ()):
        if not isinstance(mount, dict) or mount.get("source") not in _HOST_PATHS:
            raise invalid_property(f"{where}/containerHostBatchBindMounts/{index}/source",
                                   mount.get("source") if isinstance(mount, dict) else mount,
                                   f"Must be one of {', '.join(_HOST_PATHS)}.")


def check_container_configuration(configuration: Json | None) -> None:
    """A pool's containerConfiguration: its type, and image names that are strings."""
    if configuration is None:
        return
    where = "virtualMachineConfiguration/containerConfiguration"
    if configuration.get("type") not in _TYPES:
        raise invalid_property(f"{where}/type", configuration.get("type"), f"Must be one of {', '.join(_TYPES)}.")
    for index, name in enumerate(configuration.get("containerImageNames") or ()):
        if not _reference(name):
            raise invalid_property(f"{where}/containerImageNames/{index}", name, _REFERENCE_RULE)
    for index, registry in enumerate(configuration.get("containerRegistries") or ()):
        _check_registry(registry, f"{where}/containerRegistries/{index}")


_REFERENCE_RULE = "An image reference, as docker pull takes it (no spaces, not starting with '-')."


def _reference(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith("-") and not any(
        c.isspace() or c == "\0" for c in value)


def _check_registry(registry: Json | None, where: str) -> None:
    """A registry's server and user name go to ``docker login``: neither may look like an option."""
    for key in ("registryServer", "username"):
        value = (registry or {}).get(key)
        if value is not None and not _reference(value):
            raise invalid_property(f"{where}/{key}", value, "Must not be empty, contain spaces or start with '-'.")
