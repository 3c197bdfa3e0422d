"""Use cases, one transaction each; the rules they apply live in :mod:`openbatch.domain`."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.engine import Store
from .account import AccountService
from .context import ServiceContext
from .execution import ExecutionService
from .files import FileService
from .jobs import JobService
from .nodes import NodeService
from .pools import PoolService
from .prep_release import PrepReleaseService
from .tasks import TaskService


@dataclass
class Services:
    pools: PoolService
    jobs: JobService
    tasks: TaskService
    nodes: NodeService
    files: FileService
    prep_release: PrepReleaseService
    account: AccountService
    execution: ExecutionService

    @classmethod
    def create(cls, store: Store) -> "Services":
        ctx = ServiceContext(store)
        jobs = JobService(ctx)
        nodes = NodeService(ctx)
        return cls(
            pools=PoolService(ctx),
            jobs=jobs,
            tasks=TaskService(ctx, jobs),
            nodes=nodes,
            files=FileService(ctx, nodes),
            prep_release=PrepReleaseService(ctx),
            account=AccountService(ctx),
            execution=ExecutionService(ctx, jobs),
        )
