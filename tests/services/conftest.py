"""Services on a real SQLite store, without HTTP: what the use cases decide, and what they tell the
execution layer (commands for agents, wake-ups), recorded by a notifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from openbatch.domain.models import JobAddParameter, PoolAddParameter, TaskAddParameter, decode
from openbatch.domain.quotas import Quotas
from openbatch.scheduler.round import SchedulingRound
from openbatch.services import Services
from openbatch.services.context import Notifier
from openbatch.store.engine import Store

ACCOUNT = "acct"


@dataclass
class Recorder(Notifier):
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    wakes: int = 0
    gone: list[str] = field(default_factory=list)

    def push(self, agent_id: str, commands: list[dict[str, Any]]) -> None:
        self.commands.setdefault(agent_id, []).extend(commands)

    def wake(self) -> None:
        self.wakes += 1

    def agent_gone(self, agent_id: str, retired: bool = False) -> None:
        self.gone.append(agent_id)

    def take(self, agent_id: str) -> list[dict[str, Any]]:
        return self.commands.pop(agent_id, [])


@dataclass
class World:
    services: Services
    notes: Recorder
    round: SchedulingRound

    def pool(self, pool_id: str, nodes: int, slots: int = 1, **extra: Any) -> None:
        body = {"id": pool_id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": nodes, "taskSlotsPerNode": slots,
                "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu",
                                                                   "sku": "22_04-lts"},
                                                "nodeAgentSKUId": "batch.node.ubuntu 22.04"}, **extra}
        self.services.pools.add(ACCOUNT, decode(body, PoolAddParameter))

    def job(self, job_id: str, pool_id: str, **extra: Any) -> None:
        self.services.jobs.add(ACCOUNT, decode({"id": job_id, "poolInfo": {"poolId": pool_id}, **extra},
                                               JobAddParameter))

    def tasks(self, job_id: str, *ids: str, **extra: Any) -> None:
        outcomes = self.services.tasks.add_collection(ACCOUNT, job_id, [
            decode({"id": task_id, "commandLine": "/bin/true", **extra}, TaskAddParameter) for task_id in ids])
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes]

    def host(self, pool_id: str) -> tuple[str, list[str]]:
        """A local agent registers every node of the pool and brings them up: (agent id, node ids)."""
        from openbatch.services.agents import unhosted_local_nodes

        node_ids = [node_id for _, pool, node_id, _ in unhosted_local_nodes(self.services.ctx) if pool == pool_id]
        agent_id, credential, _ = self.services.agents.register(ACCOUNT, pool_id, "host", node_ids=node_ids)
        identity = self.services.agents.authenticate(agent_id, credential)
        for node_id in node_ids:
            self.services.agents.node_ready(identity, node_id)
        return agent_id, node_ids

    def counts(self, job_id: str) -> dict[str, int]:
        return self.services.jobs.task_counts(ACCOUNT, job_id)["taskCounts"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store(f"sqlite:///{tmp_path / 'services.db'}")
    store.migrate()
    services = Services.create(store, node_provider=True, quotas=Quotas(dedicated_cores=8, pools=5, active_jobs=5))
    notes = Recorder()
    services.ctx.notifier = notes
    scheduling = SchedulingRound(services.ctx)
    services.ctx.schedule_in = scheduling.schedule_pool_in
    try:
        yield World(services, notes, scheduling)
    finally:
        store.dispose()
