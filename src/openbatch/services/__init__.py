"""Use cases, one transaction each; the rules they apply live in :mod:`openbatch.domain`."""

from __future__ import annotations

from dataclasses import dataclass

from .auto_storage import AutoStorage
from .autoscale import AutoscaleService
from ..domain.intervals import Intervals
from ..domain.quotas import Quotas
from ..domain.spot import Spot
from ..store.engine import Store
from ..store.records import Record
from .account import AccountService
from .agents import AgentService
from .allocation import Allocation
from .certificates import CertificateService
from .node_users import NodeUserService
from .overview import OverviewService
from .context import ServiceContext
from .execution import ExecutionService
from .files import FileService
from .job_limits import JobLimits
from .job_schedules import JobScheduleService
from .jobs import JobService
from .node_ops import NodeOperations
from .nodes import NodeService
from .pools import PoolService
from .preemption import PreemptionService
from .prep_release import PrepReleaseService
from .retention import Retention
from .runs import RunService
from .tasks import TaskService


__all__ = ["Record", "Services"]


@dataclass
class Services:
    pools: PoolService
    autoscale: AutoscaleService
    jobs: JobService
    job_schedules: JobScheduleService
    tasks: TaskService
    nodes: NodeService
    files: FileService
    prep_release: PrepReleaseService
    account: AccountService
    execution: ExecutionService
    ctx: ServiceContext
    agents: AgentService
    runs: RunService
    node_ops: NodeOperations
    job_limits: JobLimits
    retention: Retention
    preemption: PreemptionService
    certificates: CertificateService
    node_users: NodeUserService
    overview: OverviewService

    @classmethod
    def create(cls, store: Store, *, node_provider: bool = False, quotas: Quotas | None = None,
               auto_storage: AutoStorage | None = None, intervals: Intervals | None = None,
               spot: Spot | None = None) -> "Services":
        """``node_provider``: pools get compute nodes (run by agents); otherwise pools allocate none.
        ``auto_storage``: the account autoStorageContainerName resource files come from."""
        ctx = ServiceContext(store, quotas=quotas or Quotas(), auto_storage=auto_storage,
                             intervals=intervals or Intervals(), spot=spot or Spot())
        jobs = JobService(ctx)
        nodes = NodeService(ctx)
        allocation = Allocation(ctx, jobs)
        node_ops = NodeOperations(ctx, allocation)
        ctx.node_vacated = node_ops.node_vacated
        pools = PoolService(ctx, allocation if node_provider else None)
        jobs.pools = pools
        return cls(
            ctx=ctx,
            agents=AgentService(ctx, jobs, node_ops),
            runs=RunService(ctx, jobs),
            node_ops=node_ops,
            job_limits=JobLimits(ctx, jobs),
            retention=Retention(ctx),
            preemption=PreemptionService(ctx, node_ops),
            certificates=CertificateService(ctx),
            node_users=NodeUserService(ctx, nodes),
            overview=OverviewService(ctx),
            pools=pools,
            autoscale=AutoscaleService(ctx, pools),
            jobs=jobs,
            job_schedules=JobScheduleService(ctx, jobs),
            tasks=TaskService(ctx, jobs),
            nodes=nodes,
            files=FileService(ctx, nodes),
            prep_release=PrepReleaseService(ctx),
            account=AccountService(ctx),
            execution=ExecutionService(ctx, jobs),
        )
