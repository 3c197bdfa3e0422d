"""What operators and their tools call without an account key: /health, /ready, /metrics.

``/health`` answers 200 while the process serves; ``/ready`` 200 once the store answers and a leader
is known (this server, or another of the database), 503 saying what is missing otherwise;
``/metrics`` the Prometheus text of this process's counters (openbatch.metrics) and of the store's
state read now (services/overview.py). With a metrics token set, /metrics wants it as a bearer token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.responses import JSONResponse, Response

from .. import metrics
from ..services import Services
from ..services.overview import TASK_STATES, Overview

log = logging.getLogger("openbatch.api")

PATHS = frozenset({"/health", "/ready", "/metrics"})


class Operations:
    def __init__(self, services: Services, runtime: Any = None, metrics_token: str | None = None) -> None:
        self.services = services
        self.runtime = runtime
        self.metrics_token = metrics_token
        self._state = CollectorRegistry(auto_describe=False)
        self._state.register(_StateCollector(self))
        self._overview: Overview | None = None

    async def handle(self, path: str, headers: dict[str, str]) -> Response:
        if path == "/health":
            return JSONResponse({"status": "ok"})
        if path == "/ready":
            return await self._ready()
        return await self._metrics(headers)

    async def _ready(self) -> Response:
        try:
            await asyncio.to_thread(self.services.overview.ping)
        except Exception as error:  # noqa: BLE001 - whatever the store says, the server is not ready
            return JSONResponse({"status": "unavailable", "store": f"unreachable: {type(error).__name__}"}, 503)
        leadership = getattr(self.runtime, "leadership", None)
        if leadership is not None and not leadership.leader_known:
            return JSONResponse({"status": "unavailable", "store": "ok", "leader": "unknown"}, 503)
        leader = "none" if self.runtime is None else "this server" if self.runtime.leading else "another server"
        return JSONResponse({"status": "ok", "store": "ok", "leader": leader})

    async def _metrics(self, headers: dict[str, str]) -> Response:
        if self.metrics_token is not None:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.metrics_token}".encode()):
                return Response("a metrics token is required: Authorization: Bearer <token>\n", 401,
                                {"WWW-Authenticate": "Bearer"}, media_type="text/plain")
        overview = await asyncio.to_thread(self.services.overview.overview)
        self._overview = overview
        try:
            body = generate_latest(metrics.REGISTRY) + generate_latest(self._state)
        finally:
            self._overview = None
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class _StateCollector(Collector):
    """The store's state as gauges, from the overview read for the scrape under way."""

    def __init__(self, owner: Operations) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        overview = self.owner._overview
        if overview is None:
            return
        tasks = GaugeMetricFamily("openbatch_tasks", "Tasks by state (running includes preparing), per account and "
                                  "pool of their job", labels=["account", "pool", "state"])
        completed = GaugeMetricFamily("openbatch_tasks_completed", "Completed tasks by result, per account and pool",
                                      labels=["account", "pool", "result"])
        nodes = GaugeMetricFamily("openbatch_nodes", "Compute nodes by state, per account and pool (dedicated: "
                                  "true, or false for low-priority)", labels=["account", "pool", "state", "dedicated"])
        slots = GaugeMetricFamily("openbatch_pool_slots", "Task slots of the pool's nodes, and those in use",
                                  labels=["account", "pool", "kind"])
        targets = GaugeMetricFamily("openbatch_pool_target_nodes", "The pool's target node counts",
                                    labels=["account", "pool", "dedicated"])
        pools = GaugeMetricFamily("openbatch_pools", "Pools by state and allocation state",
                                  labels=["account", "state", "allocation_state"])
        jobs = GaugeMetricFamily("openbatch_jobs", "Jobs by state", labels=["account", "state"])
        pool_states: dict[tuple[str, str, str], int] = {}
        for pool in overview.pools:
            for state in TASK_STATES:
                tasks.add_metric([pool.account, pool.id, state], pool.tasks[state])
            completed.add_metric([pool.account, pool.id, "succeeded"], pool.succeeded)
            completed.add_metric([pool.account, pool.id, "failed"], pool.failed)
            for (state, dedicated), number in sorted(pool.nodes.items()):
                nodes.add_metric([pool.account, pool.id, state, str(dedicated).lower()], number)
            slots.add_metric([pool.account, pool.id, "total"], pool.slots)
            slots.add_metric([pool.account, pool.id, "used"], pool.used_slots)
            targets.add_metric([pool.account, pool.id, "true"], pool.target_dedicated)
            targets.add_metric([pool.account, pool.id, "false"], pool.target_low_priority)
            key = (pool.account, pool.state, pool.allocation_state)
            pool_states[key] = pool_states.get(key, 0) + 1
        for (account, state), number in sorted(overview.tasks_without_pool.items()):
            tasks.add_metric([account, "", state], number)
        for (account, state, allocation), number in sorted(pool_states.items()):
            pools.add_metric([account, state, allocation], number)
        for (account, state), number in sorted(overview.jobs.items()):
            jobs.add_metric([account, state], number)
        yield from (tasks, completed, nodes, slots, targets, pools, jobs)
