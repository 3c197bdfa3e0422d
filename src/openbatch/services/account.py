"""Account-level reads: node counts per pool, the images this server runs, applications."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..domain.errors import not_found
from ..store.node_queries import node_states_by_pool
from ..store.records import POOLS
from .context import ListQuery, Page, ServiceContext, id_key, page_of

Json = dict[str, Any]

NODE_COUNT_STATES = {
    "creating": "creating", "idle": "idle", "offline": "offline", "preempted": "preempted",
    "rebooting": "rebooting", "reimaging": "reimaging", "running": "running", "starting": "starting",
    "starttaskfailed": "startTaskFailed", "leavingpool": "leavingPool", "unknown": "unknown",
    "unusable": "unusable", "waitingforstarttask": "waitingForStartTask", "upgradingos": "upgradingOS",
    "deallocated": "deallocated", "deallocating": "deallocating",
}

#: Tasks run on the host's own OS, whatever image a pool names; these are the Linux
#: images whose Azure layout and environment the local nodes reproduce.
SUPPORTED_IMAGES: list[Json] = [
    {
        "nodeAgentSKUId": sku,
        "imageReference": {"publisher": publisher, "offer": offer, "sku": image_sku, "version": "latest"},
        "osType": "linux",
        "capabilities": ["RunsOnHostOS"],
        "verificationType": "verified",
    }
    for sku, publisher, offer, image_sku in [
        ("batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"),
        ("batch.node.ubuntu 20.04", "canonical", "0001-com-ubuntu-server-focal", "20_04-lts"),
        ("batch.node.debian 12", "debian", "debian-12", "12"),
        ("batch.node.el 9", "almalinux", "almalinux-x86_64", "9-gen2"),
    ]
]


def _zero_counts() -> Json:
    return {**{name: 0 for name in NODE_COUNT_STATES.values()}, "total": 0}


class AccountService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def pool_node_counts(self, account: str, query: ListQuery) -> tuple[list[Json], tuple[str, ...] | None]:
        """NodeCounts per pool (dedicated and low-priority) from the node rows, one page of pools."""
        with self.ctx.store.read() as conn:
            page: Page = page_of(POOLS.page(conn, (account,), query.filter, query.after, query.limit + 1), query.limit, id_key)
            keys = [r.row["id_key"] for r in page.records]
            rows = node_states_by_pool(conn, account, keys) if keys else []
        per_pool: dict[tuple[str, bool], Counter[str]] = {}
        for pool_key, dedicated_kind, state, count in rows:
            per_pool.setdefault((pool_key, dedicated_kind), Counter())[state] += count
        result = []
        for record in page.records:
            kinds = {}
            for name, dedicated_kind in (("dedicated", True), ("lowPriority", False)):
                counts = kinds[name] = _zero_counts()
                for state, count in per_pool.get((record.row["id_key"], dedicated_kind), Counter()).items():
                    counts[NODE_COUNT_STATES.get(state, "unknown")] += count
                    counts["total"] += count
            result.append({"poolId": record.body["id"], **kinds})
        return result, page.next_after

    def supported_images(self) -> list[Json]:
        return SUPPORTED_IMAGES

    def applications(self) -> list[Json]:
        return []

    def application(self, application_id: str) -> Json:
        raise not_found("ApplicationNotFound", "application", application_id)
