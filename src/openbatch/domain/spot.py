"""Rehearsing preemption: low-priority nodes taken away as Azure takes spot VMs back.

Azure preempts low-priority (spot) nodes when it needs the capacity: their running tasks go back
to the queue (requeued, as a resize with ``requeue`` would), the node shows ``preempted`` and
counts in ``$PreemptedNodeCount`` until a VM is found for it again. Azure offers no way to make
that happen when a user wants to test for it; an openbatch server can, by a setting: each
low-priority node that can run tasks is preempted at ``rate_per_hour`` (a Poisson process, so
the chance in a pass of ``seconds`` is ``1 - exp(-rate * seconds / 3600)``), and comes back as
after a reimage ``recovery`` later. The default rate is 0: never.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta

from .nodes import NodeState

#: Node states in which a low-priority node can be preempted (it holds a VM).
PREEMPTIBLE = (NodeState.IDLE.value, NodeState.RUNNING.value, NodeState.OFFLINE.value,
               NodeState.WAITING_FOR_START_TASK.value, NodeState.START_TASK_FAILED.value)


@dataclass(frozen=True, slots=True)
class Spot:
    #: Expected preemptions per low-priority node and hour (0: never).
    rate_per_hour: float = 0.0
    #: How long a preempted node waits before it comes back.
    recovery: timedelta = timedelta(minutes=1)


def preempted_in(spot: Spot, seconds: float, rng: random.Random) -> bool:
    """Whether a node is preempted during a pass of ``seconds``."""
    if spot.rate_per_hour <= 0 or seconds <= 0:
        return False
    return rng.random() < 1.0 - math.exp(-spot.rate_per_hour * seconds / 3600.0)
