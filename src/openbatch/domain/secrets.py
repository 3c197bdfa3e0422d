"""Secrets in stored bodies: kept for use, never returned (Azure never echoes them either).

A pool's user passwords and SSH keys, the keys of its mounts and container registries,
a task's registry password: :func:`redacted` gives the body without them, copying only
the objects on the way to a secret, so a body without any costs one lookup per path.
A secret the Swagger marks required (a user account's password, a file share's key)
is answered as an empty string, so the answer still satisfies the contract.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_REGISTRY = "containerSettings/registry/password"
_TASK_KINDS = ("jobManagerTask", "jobPreparationTask", "jobReleaseTask")

POOL_SECRETS: tuple[str, ...] = (
    "userAccounts[]/password",
    "userAccounts[]/linuxUserConfiguration/sshPrivateKey",
    "mountConfiguration[]/azureBlobFileSystemConfiguration/accountKey",
    "mountConfiguration[]/azureBlobFileSystemConfiguration/sasKey",
    "mountConfiguration[]/azureFileShareConfiguration/accountKey",
    "mountConfiguration[]/cifsMountConfiguration/password",
    "virtualMachineConfiguration/containerConfiguration/containerRegistries[]/password",
    "virtualMachineConfiguration/extensions[]/protectedSettings",
    f"startTask/{_REGISTRY}",
)
TASK_SECRETS: tuple[str, ...] = (_REGISTRY,)
NODE_SECRETS: tuple[str, ...] = (f"startTask/{_REGISTRY}",)
JOB_SECRETS: tuple[str, ...] = (
    *(f"{kind}/{_REGISTRY}" for kind in _TASK_KINDS),
    *(f"poolInfo/autoPoolSpecification/pool/{path}" for path in POOL_SECRETS),
)
JOB_SCHEDULE_SECRETS: tuple[str, ...] = tuple(f"jobSpecification/{path}" for path in JOB_SECRETS)


#: Secrets the Swagger marks required: blanked instead of left out.
_REQUIRED_BY_SPEC = ("userAccounts[]/password", "azureFileShareConfiguration/accountKey",
                     "cifsMountConfiguration/password")


def redacted(body: Json, paths: tuple[str, ...]) -> Json:
    """``body`` without the values at ``paths`` (``[]`` after a name: every item of that list)."""
    for path in paths:
        body = _without(body, path.split("/"), path.endswith(_REQUIRED_BY_SPEC))
    return body


def _without(value: Any, parts: list[str], blank: bool) -> Any:
    """``value`` with the secret at ``parts`` removed (or blanked); the same object when there is none."""
    if not isinstance(value, dict):
        return value
    name, rest = parts[0], parts[1:]
    listed = name.endswith("[]")
    name = name.removesuffix("[]")
    if name not in value:
        return value
    child = value[name]
    if not rest:
        if blank:
            return value if child == "" else {**value, name: ""}
        return {key: item for key, item in value.items() if key != name}
    if listed:
        if not isinstance(child, list):
            return value
        new_child: Any = [_without(item, rest, blank) for item in child]
        changed = any(new is not old for new, old in zip(new_child, child))
    else:
        new_child = _without(child, rest, blank)
        changed = new_child is not child
    return {**value, name: new_child} if changed else value
