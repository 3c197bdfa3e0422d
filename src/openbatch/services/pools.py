"""Pool use cases, one transaction each.

Compute nodes come from a node provider (the execution layer). Until one is
attached, an allocation settles at once: steady, with the nodes that exist and a
resize error saying why the target was not reached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..domain import pools as rules
from ..domain.conditions import NONE, Conditions, check
from ..domain.errors import BatchError, not_found
from ..domain import quotas as quota_rules, usage_metrics as usage_rules
from ..domain.models import (
    NodeRemoveParameter,
    PoolAddParameter,
    PoolPatchParameter,
    PoolResizeParameter,
    PoolUpdatePropertiesParameter,
)
from ..domain.states import AllocationState, PoolState
from ..store.engine import Connection
from ..store import node_queries
from ..store.node_queries import nodes_by_vm_size
from ..store.autoscale_queries import usage_page
from ..store.records import NODES, POOLS, Record
from . import auto_storage, events
from .allocation import Allocation
from .context import ListQuery, Page, ServiceContext, id_key, page_of, require_pool

Json = dict[str, Any]

MAX_NODES_PER_REMOVE = 100



class PoolService:
    def __init__(self, ctx: ServiceContext, allocation: Allocation | None = None) -> None:
        self.ctx = ctx
        #: Creates and removes compute nodes; None when no node provider is attached.
        self.allocation = allocation
        #: Evaluate a pool's autoscale formula now and apply it (in the caller's transaction); installed
        #: by the autoscale use cases (autoscale.py), which own it.
        self.autoscale_in: Callable[[Connection, str, Record], Record] = lambda conn, account, record: record

    def add(self, account: str, pool: PoolAddParameter) -> Record:
        rules.validate_new_pool(pool, self.ctx.intervals.autoscale_minimum)
        auto_storage.check_configured(self.ctx.auto_storage, pool, auto_storage.POOL_NEEDS)
        rules.check_application_packages(pool.applicationPackageReferences)
        with self.ctx.store.write() as conn:
            return self.add_in(conn, account, pool)

    def add_in(self, conn: Connection, account: str, pool: PoolAddParameter) -> Record:
        """Create a validated pool in the caller's transaction (Pool Add, or a job's auto pool)."""
        now = self.ctx.now()
        if POOLS.get(conn, (account,), (pool.id,)) is not None:
            raise BatchError("PoolExists", "The specified pool already exists.", [("PoolId", pool.id)])
        quota_rules.check_pool_quota(self.ctx.quotas, POOLS.count(conn, (account,)))
        record = POOLS.insert(conn, (account,), rules.new_pool_body(pool, now), now)
        events.pool(conn, pool.id, "added (%s)", "autoscale" if record.body.get("enableAutoScale") else
                    f"{pool.targetDedicatedNodes or 0} dedicated, {pool.targetLowPriorityNodes or 0} low-priority nodes")
        if record.body.get("enableAutoScale"):
            record = self.autoscale_in(conn, account, record)   # its first evaluation sets its targets
        return self._settle_allocation(conn, account, record)

    def allocation_failed(self, account: str, pool_id: str, message: str) -> None:
        """The node provider could not get a node for the pool: its resizeErrors say why (until a resize)."""
        with self.ctx.store.write() as conn:
            record = POOLS.get(conn, (account,), (pool_id,), for_update=True)
            if record is None:
                return
            error = {"code": "AllocationFailed", "message": message}
            if record.body.get("resizeErrors") == [error]:
                return
            events.pool(conn, pool_id, "allocation failed: %s", message)
            POOLS.update(conn, record, {**record.body, "resizeErrors": [error]}, self.ctx.now())

    def metadata_value(self, account: str, pool_id: str, name: str) -> str | None:
        """The value of the pool's metadata item ``name`` (None without one, or without the pool)."""
        with self.ctx.store.read() as conn:
            record = POOLS.get(conn, (account,), (pool_id,))
        items = (record.body.get("metadata") or []) if record is not None else []
        return next((item.get("value") for item in items if item.get("name") == name), None)

    def get(self, account: str, pool_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.read() as conn:
            record = require_pool(conn, account, pool_id)
        check(conditions, record.etag, record.last_modified, read=True)
        return record

    def list(self, account: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            records = POOLS.page(conn, (account,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    def usage_metrics(self, account: str, start: datetime | None, end: datetime | None, query: ListQuery) -> Page:
        """Pool_ListUsageMetrics: the pools' core-hours per interval within [start, end] (domain/usage_metrics.py)."""
        first, stop = usage_rules.window(self.ctx.now(), start, end)
        with self.ctx.store.read() as conn:
            records = usage_page(conn, account, first, stop, query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, lambda r: (r.row["interval_key"], r.row["pool_id_key"]))

    def delete(self, account: str, pool_id: str, conditions: Conditions = NONE) -> None:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, conditions)
            rules.check_not_deleting(record.body)
            self.delete_in(conn, account, record)

    def delete_in(self, conn: Connection, account: str, record: Record) -> None:
        """Delete a pool (locked, not deleting) in the caller's transaction: its nodes leave, then it goes."""
        now = self.ctx.now()
        record = POOLS.update(conn, record, rules.with_state(record.body, PoolState.DELETING, now), now)
        events.pool(conn, record.body["id"], "deleting")
        if self.allocation is not None:
            for node in self.allocation.pool_nodes(conn, account, record.row["id_key"]):
                self.allocation.remove(conn, account, node, "requeue", now)
        if NODES.count(conn, (account, record.row["id_key"])) == 0:
            POOLS.delete(conn, record.pk)
            events.pool(conn, record.body["id"], "deleted")

    def patch(self, account: str, pool_id: str, patch: PoolPatchParameter, conditions: Conditions = NONE) -> Record:
        rules.check_application_packages(patch.applicationPackageReferences)
        auto_storage.check_configured(self.ctx.auto_storage, patch, auto_storage.POOL_NEEDS)
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, conditions)
            return POOLS.update(conn, record, rules.patched_body(record.body, patch), self.ctx.now())

    def update_properties(self, account: str, pool_id: str, update: PoolUpdatePropertiesParameter) -> Record:
        rules.check_application_packages(update.applicationPackageReferences)
        auto_storage.check_configured(self.ctx.auto_storage, update, auto_storage.POOL_NEEDS)
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, NONE)
            return POOLS.update(conn, record, rules.updated_properties_body(record.body, update), self.ctx.now())

    def resize(self, account: str, pool_id: str, resize: PoolResizeParameter, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, conditions)
            now = self.ctx.now()
            record = POOLS.update(conn, record, rules.resize_requested(record.body, resize, now), now)
            return self._settle_allocation(conn, account, record, resize.nodeDeallocationOption or "requeue")

    def stop_resize(self, account: str, pool_id: str, conditions: Conditions = NONE) -> Record:
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, conditions)
            now = self.ctx.now()
            record = POOLS.update(conn, record, rules.stop_resize_requested(record.body, now), now)
            return self._settle_allocation(conn, account, record)

    def remove_nodes(self, account: str, pool_id: str, params: NodeRemoveParameter, conditions: Conditions = NONE) -> Record:
        if not params.nodeList or len(params.nodeList) > MAX_NODES_PER_REMOVE:
            raise BatchError("InvalidPropertyValue", f"nodeList must hold between 1 and {MAX_NODES_PER_REMOVE} node ids.",
                             [("PropertyName", "nodeList")])
        with self.ctx.store.write() as conn:
            record = self._locked(conn, account, pool_id, conditions)
            rules.check_not_deleting(record.body)
            if record.body["allocationState"] != AllocationState.STEADY.value:
                raise BatchError("PoolBeingResized", "The pool is not in a steady allocation state.")
            found = []
            for node_id in params.nodeList:
                node = NODES.get(conn, (account, record.row["id_key"]), (node_id,), for_update=True)
                if node is None:
                    raise not_found("NodeNotFound", "node", node_id)
                found.append(node)
            now = self.ctx.now()
            if self.allocation is not None:
                for node in found:
                    self.allocation.remove(conn, account, node, params.nodeDeallocationOption or "requeue", now)
            body = dict(record.body)
            removed_dedicated = sum(1 for node in found if node.body.get("isDedicated", True))
            body["targetDedicatedNodes"] = max(0, body["targetDedicatedNodes"] - removed_dedicated)
            body["targetLowPriorityNodes"] = max(0, body["targetLowPriorityNodes"] - (len(found) - removed_dedicated))
            body["currentDedicatedNodes"], body["currentLowPriorityNodes"] = node_queries.count_by_kind(
                conn, account, record.row["id_key"])
            return POOLS.update(conn, record, body, now)

    def _locked(self, conn: Connection, account: str, pool_id: str, conditions: Conditions) -> Record:
        record = require_pool(conn, account, pool_id, for_update=True)
        check(conditions, record.etag, record.last_modified, read=False)
        return record

    def _settle_allocation(self, conn: Connection, account: str, record: Record, option: str = "requeue") -> Record:
        """Bring the pool's nodes to its target: created at once (they boot in ``starting``),
        removed by the deallocation option. Without a node provider, an allocation ends at
        once with the nodes that exist and a resize error saying why."""
        body = record.body
        if body["allocationState"] == AllocationState.STEADY.value:
            return record
        now = self.ctx.now()
        if self.allocation is not None:
            return self._allocate(conn, account, record, option, now)
        new = rules.with_allocation_state(body, AllocationState.STEADY, now)
        new["currentDedicatedNodes"], new["currentLowPriorityNodes"] = node_queries.count_by_kind(
            conn, account, record.row["id_key"])
        current = new["currentDedicatedNodes"] + new["currentLowPriorityNodes"]
        if body["allocationState"] == AllocationState.RESIZING.value and body["targetDedicatedNodes"] + body[
            "targetLowPriorityNodes"
        ] > current:
            new["resizeErrors"] = [
                {
                    "code": "AllocationFailed",
                    "message": "No compute node provider is attached to this openbatch server, so no nodes "
                    "could be allocated.",
                }
            ]
        return POOLS.update(conn, record, new, now)

    def _allocate(self, conn: Connection, account: str, record: Record, option: str, now: datetime) -> Record:
        """Grow or shrink each kind of node (dedicated, low-priority) to its target. Only dedicated nodes
        count against the account's dedicated core quota."""
        assert self.allocation is not None
        body = record.body
        key = record.row["id_key"]
        errors: list[Json] = []
        if body["allocationState"] == AllocationState.RESIZING.value:
            dedicated, low_priority = node_queries.count_by_kind(conn, account, key)
            target = body["targetDedicatedNodes"]
            if target > dedicated:
                allowed = dedicated + nodes_within_quota(self.ctx, conn, account, record, dedicated, target - dedicated)
                if allowed < target:
                    errors.append(quota_rules.core_quota_error(self.ctx.quotas.dedicated_cores, body["vmSize"],
                                                               target, allowed))
                self.allocation.grow(conn, account, record, allowed - dedicated, now)
            elif target < dedicated:
                self.allocation.shrink(conn, account, record, dedicated - target, option, now)
            target = body["targetLowPriorityNodes"]
            if target > low_priority:
                self.allocation.grow(conn, account, record, target - low_priority, now, dedicated=False)
            elif target < low_priority:
                self.allocation.shrink(conn, account, record, low_priority - target, option, now, dedicated=False)
        # A resize down with taskcompletion/retaineddata ends when the nodes waiting for their tasks have left.
        resizing = (body["allocationState"] == AllocationState.RESIZING.value
                    and self.allocation.leaving(conn, account, key))
        new = rules.with_allocation_state(body, AllocationState.RESIZING if resizing else AllocationState.STEADY, now)
        new["currentDedicatedNodes"], new["currentLowPriorityNodes"] = node_queries.count_by_kind(conn, account, key)
        if body["allocationState"] == AllocationState.RESIZING.value:
            events.pool(conn, body["id"], "resizing to %d dedicated, %d low-priority nodes%s",
                        body["targetDedicatedNodes"], body["targetLowPriorityNodes"],
                        "".join(f"; {error['code']}: {error['message']}" for error in errors))
        if errors:
            new["resizeErrors"] = errors
        else:
            new.pop("resizeErrors", None)
        return POOLS.update(conn, record, new, now)

    def retarget_in(self, conn: Connection, account: str, record: Record, dedicated: int, low_priority: int,
                    option: str) -> Record:
        """New targets from an autoscale evaluation (pool locked): the pool resizes to them, nodes leaving
        by ``option``. Unchanged targets change nothing."""
        body = record.body
        if body["targetDedicatedNodes"] == dedicated and body["targetLowPriorityNodes"] == low_priority:
            return record
        now = self.ctx.now()
        new = rules.with_allocation_state({**body, "targetDedicatedNodes": dedicated,
                                           "targetLowPriorityNodes": low_priority}, AllocationState.RESIZING, now)
        new.pop("resizeErrors", None)
        return self._settle_allocation(conn, account, POOLS.update(conn, record, new, now), option)


def nodes_within_quota(ctx: ServiceContext, conn: Connection, account: str, pool: Record, current: int,
                       wanted: int) -> int:
    """How many of ``wanted`` more nodes the pool (which has ``current``) may get within the account's
    dedicated core quota: every node of the account counts, each by its pool's vmSize."""
    vm_size = pool.body["vmSize"]
    elsewhere = sum(count * quota_rules.cores_of(size)
                    for size, count in nodes_by_vm_size(conn, account, pool.row["id_key"]))
    used = elsewhere + current * quota_rules.cores_of(vm_size)
    return quota_rules.nodes_within(ctx.quotas.dedicated_cores, used, vm_size, wanted)
