"""Per-account quotas, as Azure Batch accounts have them: dedicated cores, pools, active jobs.

They bound what one request can make the server build: a resize to a billion nodes
allocates up to the core quota and reports ``AccountCoreQuotaReached`` in the pool's
``resizeErrors``, as Azure does; a pool or job beyond its quota is refused with Azure's
error. Cores are counted as Azure counts them, from the pool's ``vmSize``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import BatchError

#: Azure's size names carry their vCPUs after the family letters: Standard_D2s_v3 -> 2, Standard_F16s_v2 -> 16.
_CORES_RE = re.compile(r"^(?:standard|basic)_[a-z]+?(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Quotas:
    dedicated_cores: int = 2000
    pools: int = 100
    active_jobs: int = 300


@lru_cache(maxsize=256)
def cores_of(vm_size: str) -> int:
    """The vCPUs of an Azure VM size (1 for a name that does not say)."""
    found = _CORES_RE.match(vm_size or "")
    return max(1, int(found.group(1))) if found else 1


def nodes_within(quota: int, used_elsewhere: int, vm_size: str, wanted: int) -> int:
    """How many of ``wanted`` nodes of ``vm_size`` fit in the core ``quota`` beside ``used_elsewhere`` cores."""
    room = max(0, quota - used_elsewhere) // cores_of(vm_size)
    return min(wanted, room)


def core_quota_error(quota: int, vm_size: str, target: int, reached: int) -> dict[str, Any]:
    """The pool's resizeErrors entry when its target does not fit in the account's core quota."""
    return {
        "code": "AccountCoreQuotaReached",
        "message": (f"The account's dedicated core quota ({quota} cores) was reached: {reached} of the "
                    f"{target} requested {vm_size} nodes were allocated."),
        "values": [{"name": "CoreQuota", "value": str(quota)},
                   {"name": "CoresPerNode", "value": str(cores_of(vm_size))}],
    }


def check_pool_quota(quotas: Quotas, pools: int) -> None:
    if pools >= quotas.pools:
        raise BatchError("PoolQuotaReached", "The specified account has reached its pool quota.",
                         [("PoolQuota", str(quotas.pools))])


def check_job_quota(quotas: Quotas, active_jobs: int) -> None:
    if active_jobs >= quotas.active_jobs:
        raise BatchError("ActiveJobAndScheduleQuotaReached",
                         "The specified account has reached its quota of active jobs and job schedules.",
                         [("ActiveJobAndScheduleQuota", str(quotas.active_jobs))])
