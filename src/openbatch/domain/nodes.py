"""Compute node rules: the ComputeNode body, its states, and which nodes can take tasks."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any, Mapping

from . import clock
from .errors import BatchError

Json = dict[str, Any]

AGENT_VERSION = "openbatch-0.1"


class NodeState(StrEnum):
    IDLE = "idle"
    REBOOTING = "rebooting"
    REIMAGING = "reimaging"
    RUNNING = "running"
    UNUSABLE = "unusable"
    CREATING = "creating"
    STARTING = "starting"
    WAITING_FOR_START_TASK = "waitingforstarttask"
    START_TASK_FAILED = "starttaskfailed"
    UNKNOWN = "unknown"
    LEAVING_POOL = "leavingpool"
    OFFLINE = "offline"
    PREEMPTED = "preempted"
    DEALLOCATING = "deallocating"
    DEALLOCATED = "deallocated"


#: States in which a node with scheduling enabled may be given tasks.
SCHEDULABLE = frozenset({NodeState.IDLE.value, NodeState.RUNNING.value})


def new_node_id(dedicated: bool = True) -> str:
    """An id shaped like Azure's (``tvmps_<hex>_d``; ``_p`` for a low-priority node), unique across pools."""
    return f"tvmps_{secrets.token_hex(16)}_{'d' if dedicated else 'p'}"


def new_node_body(pool: Json, node_id: str, now: datetime, dedicated: bool = True) -> Json:
    stamp = clock.to_wire(now)
    body: Json = {
        "id": node_id,
        "state": NodeState.CREATING.value,
        "schedulingState": "enabled",
        "stateTransitionTime": stamp,
        "allocationTime": stamp,
        "ipAddress": "127.0.0.1",
        "affinityId": f"TVM:{node_id}",
        "vmSize": pool["vmSize"],
        "isDedicated": dedicated,
        "nodeAgentInfo": {"version": AGENT_VERSION, "lastUpdateTime": stamp},
    }
    vm = pool.get("virtualMachineConfiguration")
    if vm:
        body["virtualMachineInfo"] = {"imageReference": vm.get("imageReference", {})}
    if pool.get("startTask"):
        body["startTask"] = pool["startTask"]
    return body


def with_host(body: Json, address: str | None, ssh_port: int | None) -> Json:
    """The node on the host its agent runs on: its address, and an SSH endpoint when one listens there."""
    new = dict(body)
    if address:
        new["ipAddress"] = address
    new.pop("endpointConfiguration", None)
    if ssh_port:
        new["endpointConfiguration"] = {"inboundEndpoints": [{
            "name": "SSHRule.0", "protocol": "tcp", "publicIPAddress": new["ipAddress"],
            "publicFQDN": new["ipAddress"], "frontendPort": ssh_port, "backendPort": ssh_port}]}
    return new


def remote_login(body: Json) -> Json | None:
    """GetRemoteLoginSettings: where SSH reaches the node (None: no SSH server listens on its host)."""
    for endpoint in (body.get("endpointConfiguration") or {}).get("inboundEndpoints", []):
        if endpoint.get("name", "").startswith("SSHRule"):
            return {"remoteLoginIPAddress": endpoint["publicIPAddress"], "remoteLoginPort": endpoint["frontendPort"]}
    return None


def with_state(body: Json, state: NodeState, now: datetime) -> Json:
    value = state._value_  # the plain str (``.value`` is a slow descriptor on 3.11 enums)
    if body.get("state") == value:
        return body
    new = dict(body)
    new["state"] = value
    new["stateTransitionTime"] = clock.to_wire(now)
    if state in (NodeState.STARTING,):
        new["lastBootTime"] = clock.to_wire(now)
    return new


_BUSY_STATES = frozenset({NodeState.IDLE.value, NodeState.RUNNING.value, NodeState.OFFLINE.value})


def busy_state(body: Json, running_tasks: int) -> NodeState | None:
    """idle <-> running as tasks come and go (other states are left alone); None if no change."""
    return busy_state_of(body["state"], body.get("schedulingState", "enabled"), running_tasks)


def busy_state_of(state: str, scheduling_state: str, running_tasks: int) -> NodeState | None:
    """:func:`busy_state` from a node's state and schedulingState alone."""
    if state not in _BUSY_STATES:
        return None
    if running_tasks > 0:
        wanted = NodeState.RUNNING
    elif scheduling_state == "disabled":
        wanted = NodeState.OFFLINE
    else:
        wanted = NodeState.IDLE
    return None if wanted == state else wanted


def ready_state(body: Json) -> NodeState:
    """Where a node goes when its agent has it up: waiting for a start task that must succeed, or idle."""
    start = body.get("startTask")
    if start and start.get("waitForSuccess", True):
        return NodeState.WAITING_FOR_START_TASK
    return NodeState.IDLE


def render(body: Json, row: Mapping[str, Any]) -> Json:
    """The ComputeNode wire body: stored body plus the counters kept in columns."""
    out = dict(body)
    out["runningTasksCount"] = int(row.get("running_tasks", 0) or 0)
    out["runningTaskSlotsCount"] = int(row.get("used_slots", 0) or 0)
    out["totalTasksRun"] = int(row.get("total_tasks_run", 0) or 0)
    out["totalTasksSucceeded"] = int(row.get("total_tasks_succeeded", 0) or 0)
    return out


def check_scheduling_change(body: Json, enable: bool) -> None:
    current = body.get("schedulingState", "enabled")
    if (current == "enabled") == enable:
        raise BatchError("NodeAlreadyInTargetSchedulingState",
                         f"The node's scheduling is already {'enabled' if enable else 'disabled'}.",
                         [("NodeId", body["id"])])
