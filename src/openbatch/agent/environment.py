"""The environment a task process sees, as on an Azure Batch Linux node.

Nothing of the agent's own environment leaks into tasks except ``PATH`` and the
locale (``LANG``, ``LC_ALL``): a task sees a minimal base, then the node layout
variables (all absolute paths), then what the server sends — the task's
``environmentSettings`` and the identity variables (``AZ_BATCH_JOB_ID``,
``AZ_BATCH_TASK_ID``, ``AZ_BATCH_POOL_ID``, ``AZ_BATCH_NODE_ID``,
``AZ_BATCH_ACCOUNT_NAME``, ``AZ_BATCH_ACCOUNT_URL``, ``AZ_BATCH_TASK_RETRY_COUNT``,
...). The server's values are applied last and win, so it can override any of
the defaults here (for example ``AZ_BATCH_TASK_USER_IDENTITY`` or ``HOME``).

``HOME`` is the task working directory, as on Azure's Linux nodes: tools that write
dotfiles (pip, git, ...) keep them inside the task's own files.
``AZ_BATCH_TASK_USER_IDENTITY`` names the identity (PoolNonAdmin, TaskAdmin, a named
account); the runner adds ``AZ_BATCH_TASK_USER``, the account it runs as.
"""

from __future__ import annotations

import os

from .spec import RunSpec

__all__ = ["DEFAULT_PATH", "task_environment", "task_paths"]

#: Used when the agent itself has no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The agent variables passed through when set (locale only).
_INHERITED = ("LANG", "LC_ALL")
#: Auto-user identity of a task that names none: the pool-wide non-admin user (Linux default).
DEFAULT_USER_IDENTITY = "PoolNonAdmin"


def task_paths(spec: RunSpec) -> tuple[str, str, str]:
    """``(node_root, task_dir, working_dir)`` as absolute, normalised paths."""
    root = os.path.abspath(spec.node_root)  # normalised: no trailing separator, so f"{root}/x" is a join
    task_dir = os.path.normpath(f"{root}/{spec.task_dir}")
    return root, task_dir, f"{task_dir}/wd"


def task_environment(spec: RunSpec, paths: tuple[str, str, str] | None = None) -> dict[str, str]:
    """The complete environment of the process ``spec`` describes (``paths``: its :func:`task_paths`, if known)."""
    root, task_dir, working_dir = paths or task_paths(spec)
    env: dict[str, str] = {"PATH": os.environ.get("PATH") or DEFAULT_PATH, "HOME": working_dir}
    for name in _INHERITED:
        value = os.environ.get(name)
        if value is not None:
            env[name] = value
    env["AZ_BATCH_NODE_ROOT_DIR"] = root
    env["AZ_BATCH_NODE_SHARED_DIR"] = f"{root}/shared"
    env["AZ_BATCH_NODE_STARTUP_DIR"] = f"{root}/startup"
    env["AZ_BATCH_NODE_MOUNTS_DIR"] = f"{root}/fsmounts"
    env["AZ_BATCH_TASK_DIR"] = task_dir
    env["AZ_BATCH_TASK_WORKING_DIR"] = working_dir
    env["AZ_BATCH_CERTIFICATES_DIR"] = f"{task_dir}/certs"
    if spec.job_prep_dir is not None:
        prep_dir = os.path.normpath(f"{root}/{spec.job_prep_dir}")
        env["AZ_BATCH_JOB_PREP_DIR"] = prep_dir
        env["AZ_BATCH_JOB_PREP_WORKING_DIR"] = f"{prep_dir}/wd"
    env["AZ_BATCH_NODE_IS_DEDICATED"] = "true"
    env["AZ_BATCH_TASK_USER_IDENTITY"] = spec.user.label if spec.user is not None else DEFAULT_USER_IDENTITY
    env.update(spec.environment)
    return env
