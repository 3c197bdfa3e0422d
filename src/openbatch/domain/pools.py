"""Pool rules: validation, the stored CloudPool body, and resize bookkeeping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import clock
from .containers import check_container_configuration
from .identities import check_user_accounts
from .errors import BatchError, invalid_property, missing_property
from .models import (
    PoolAddParameter,
    PoolPatchParameter,
    PoolResizeParameter,
    PoolUpdatePropertiesParameter,
    StartTask,
    to_json,
)
from .states import AllocationState, PoolState
from . import pool_autoscale
from .tasks import check_task_common
from .secrets import POOL_SECRETS, redacted
from .support import REFUSED_POOL, REFUSED_POOL_PROPERTIES, REFUSED_RESIZE, check_supported
from .validation import (  # noqa: F401  (check_application_packages: re-exported for the services)
    check_application_packages,
    check_display_name,
    check_duration,
    check_id,
    check_metadata,
)

Json = dict[str, Any]

MIN_RESIZE_TIMEOUT = timedelta(minutes=5)
MAX_SLOTS_PER_NODE = 256

#: The first api-version without certificates: its UpdateProperties body has no
#: certificateReferences (azure-batch 15's BatchPoolReplaceOptions cannot send one).
NO_CERTIFICATES_API_VERSION = "2025-06-01"
#: The first api-version whose taskSchedulingPolicy has jobDefaultOrder.
JOB_DEFAULT_ORDER_API_VERSION = "2025-06-01"


class PoolReplacePropertiesParameter(PoolUpdatePropertiesParameter, kw_only=True):
    """UpdateProperties from api-version 2025-06-01 on: certificateReferences no longer exists."""

    certificateReferences: list[Json] | None = None


def update_properties_model(api_version: str) -> type[PoolUpdatePropertiesParameter]:
    """The UpdateProperties body an api-version defines (versions are dates, so they sort as strings)."""
    if api_version >= NO_CERTIFICATES_API_VERSION:
        return PoolReplacePropertiesParameter
    return PoolUpdatePropertiesParameter


def _check_start_task(task: StartTask | None) -> None:
    if task is None:
        return
    check_task_common(task, "startTask")
    if task.maxTaskRetryCount is not None and task.maxTaskRetryCount < -1:
        raise invalid_property("startTask/maxTaskRetryCount", task.maxTaskRetryCount, "Must be -1 or greater.")


def _start_task_body(body: Json) -> None:
    """A stored startTask carries its documented defaults, however it came (Add, Patch, UpdateProperties)."""
    if "startTask" in body:
        body["startTask"] = {**body["startTask"]}
        body["startTask"].setdefault("maxTaskRetryCount", 0)
        body["startTask"].setdefault("waitForSuccess", True)


def _check_targets(dedicated: int | None, low_priority: int | None) -> None:
    for name, value in (("targetDedicatedNodes", dedicated), ("targetLowPriorityNodes", low_priority)):
        if value is not None and value < 0:
            raise invalid_property(name, value, "The target node count must not be negative.")


def validate_new_pool(pool: PoolAddParameter, autoscale_minimum: timedelta = pool_autoscale.MIN_INTERVAL) -> None:
    """``autoscale_minimum``: the least autoScaleEvaluationInterval (Azure's 5 minutes unless the server lowers it)."""
    check_id(pool.id)
    check_display_name(pool.displayName)
    if pool.virtualMachineConfiguration is None:
        raise missing_property("virtualMachineConfiguration")
    check_duration(pool.resizeTimeout, "resizeTimeout", minimum=MIN_RESIZE_TIMEOUT)
    _check_targets(pool.targetDedicatedNodes, pool.targetLowPriorityNodes)
    if pool.enableAutoScale:
        if pool.targetDedicatedNodes is not None or pool.targetLowPriorityNodes is not None:
            raise invalid_property("targetDedicatedNodes", pool.targetDedicatedNodes,
                                   "Target node counts may not be given when enableAutoScale is true.")
        pool_autoscale.parsed(pool.autoScaleFormula)
        pool_autoscale.check_interval(pool.autoScaleEvaluationInterval, autoscale_minimum)
    else:
        for name in ("autoScaleFormula", "autoScaleEvaluationInterval"):
            if getattr(pool, name) is not None:
                raise invalid_property(name, getattr(pool, name),
                                       "This property must not be specified if enableAutoScale is false.")
    if pool.taskSlotsPerNode is not None and not 1 <= pool.taskSlotsPerNode <= MAX_SLOTS_PER_NODE:
        raise invalid_property("taskSlotsPerNode", pool.taskSlotsPerNode, f"Must be between 1 and {MAX_SLOTS_PER_NODE}.")
    _check_start_task(pool.startTask)
    check_user_accounts(pool.userAccounts)
    check_container_configuration(pool.virtualMachineConfiguration.containerConfiguration)
    check_metadata(pool.metadata)
    if pool.applicationPackageReferences and len(pool.applicationPackageReferences) > 10:
        raise invalid_property("applicationPackageReferences", len(pool.applicationPackageReferences), "At most 10.")
    check_supported(pool, REFUSED_POOL)


def new_pool_body(pool: PoolAddParameter, now: datetime) -> Json:
    body = to_json(pool)
    body.setdefault("resizeTimeout", "PT15M")
    body.setdefault("targetDedicatedNodes", 0)
    body.setdefault("targetLowPriorityNodes", 0)
    body.setdefault("enableAutoScale", False)
    if body["enableAutoScale"]:
        body.setdefault("autoScaleEvaluationInterval", pool_autoscale.DEFAULT_INTERVAL)
    body.setdefault("enableInterNodeCommunication", False)
    body.setdefault("taskSlotsPerNode", 1)
    body.setdefault("taskSchedulingPolicy", {"nodeFillType": "spread"})
    body.setdefault("targetNodeCommunicationMode", "default")
    _start_task_body(body)
    _with_documented_defaults(body)
    stamp = clock.to_wire(now)
    body.update(
        creationTime=stamp,
        state=PoolState.ACTIVE.value,
        stateTransitionTime=stamp,
        allocationState=AllocationState.RESIZING.value,
        allocationStateTransitionTime=stamp,
        currentDedicatedNodes=0,
        currentLowPriorityNodes=0,
    )
    return body


def _with_documented_defaults(body: Json) -> None:
    """Fill what Azure shows on Get for properties the client left out (docs: "the default is ...")."""
    config = body.get("virtualMachineConfiguration")
    if config:
        config = body["virtualMachineConfiguration"] = {**config}
        image = config.get("imageReference")
        if image and image.get("publisher") and not any(
                image.get(key) for key in ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId")):
            config["imageReference"] = {**image, "version": image.get("version") or "latest"}
        if config.get("dataDisks"):
            config["dataDisks"] = [{"caching": "none", "storageAccountType": "standard_lrs", **disk}
                                   for disk in config["dataDisks"]]
    if body.get("userAccounts"):
        body["userAccounts"] = [{"elevationLevel": "nonadmin", **user} for user in body["userAccounts"]]


def public_body(body: Json, api_version: str) -> Json:
    """The pool as Get answers ``api_version``: without secrets, and without what that version lacks."""
    body = redacted(body, POOL_SECRETS)
    policy = body.get("taskSchedulingPolicy")
    if policy and "jobDefaultOrder" in policy and api_version < JOB_DEFAULT_ORDER_API_VERSION:
        body = {**body, "taskSchedulingPolicy": {k: v for k, v in policy.items() if k != "jobDefaultOrder"}}
    return body


def job_default_order(body: Json) -> str:
    """How equal-priority jobs share the pool: ``none`` (uniformly, the default) or ``creationtime``."""
    return body.get("taskSchedulingPolicy", {}).get("jobDefaultOrder") or "none"


def check_not_deleting(body: Json) -> None:
    if body["state"] == PoolState.DELETING.value:
        raise BatchError("PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.",
                         [("PoolId", body["id"])])


def patched_body(body: Json, patch: PoolPatchParameter) -> Json:
    check_not_deleting(body)
    _check_start_task(patch.startTask)
    check_user_accounts(patch.userAccounts)
    check_supported(patch, REFUSED_POOL)
    check_metadata(patch.metadata)
    check_display_name(patch.displayName)
    if patch.taskSlotsPerNode is not None and not 1 <= patch.taskSlotsPerNode <= MAX_SLOTS_PER_NODE:
        raise invalid_property("taskSlotsPerNode", patch.taskSlotsPerNode, f"Must be between 1 and {MAX_SLOTS_PER_NODE}.")
    new = dict(body)
    new.update(to_json(patch))
    _start_task_body(new)
    _with_documented_defaults(new)
    return new


def updated_properties_body(body: Json, update: PoolUpdatePropertiesParameter) -> Json:
    """UpdateProperties replaces startTask, certificate/application references and metadata."""
    check_not_deleting(body)
    _check_start_task(update.startTask)
    check_metadata(update.metadata)
    check_supported(update, REFUSED_POOL_PROPERTIES)
    changes = to_json(update)
    new = dict(body)
    for key in ("startTask", "targetNodeCommunicationMode"):
        new.pop(key, None)
    new.update(changes)
    _start_task_body(new)
    return new


def resize_requested(body: Json, resize: PoolResizeParameter, now: datetime) -> Json:
    check_not_deleting(body)
    check_duration(resize.resizeTimeout, "resizeTimeout", minimum=MIN_RESIZE_TIMEOUT)
    _check_targets(resize.targetDedicatedNodes, resize.targetLowPriorityNodes)
    check_supported(resize, REFUSED_RESIZE)
    if body.get("enableAutoScale"):
        raise BatchError("OperationInvalidForCurrentState", "A pool with autoscale enabled cannot be resized manually.")
    if body["allocationState"] != AllocationState.STEADY.value:
        raise BatchError("PoolBeingResized" if body["allocationState"] == "resizing" else "OperationInvalidForCurrentState",
                         "The pool is not in a steady allocation state.", [("AllocationState", body["allocationState"])])
    new = dict(body)
    if resize.targetDedicatedNodes is not None:
        new["targetDedicatedNodes"] = resize.targetDedicatedNodes
    if resize.targetLowPriorityNodes is not None:
        new["targetLowPriorityNodes"] = resize.targetLowPriorityNodes
    if resize.resizeTimeout is not None:
        new["resizeTimeout"] = resize.resizeTimeout
    new.pop("resizeErrors", None)
    return with_allocation_state(new, AllocationState.RESIZING, now)


def stop_resize_requested(body: Json, now: datetime) -> Json:
    check_not_deleting(body)
    if body["allocationState"] != AllocationState.RESIZING.value:
        raise BatchError("OperationInvalidForCurrentState", "The pool is not resizing.",
                         [("AllocationState", body["allocationState"])])
    return with_allocation_state(body, AllocationState.STOPPING, now)


def with_allocation_state(body: Json, state: AllocationState, now: datetime) -> Json:
    if body.get("allocationState") == state.value:
        return body
    new = dict(body)
    new["allocationState"] = state.value
    new["allocationStateTransitionTime"] = clock.to_wire(now)
    return new


def with_state(body: Json, state: PoolState, now: datetime) -> Json:
    new = dict(body)
    new["state"] = state.value
    new["stateTransitionTime"] = clock.to_wire(now)
    return new
