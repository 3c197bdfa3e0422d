"""``openbatch serve`` (and, with the execution layer, ``openbatch agent``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import logs
from .config import Settings, default_data_dir, parse_accounts
from .domain.quotas import Quotas

if TYPE_CHECKING:
    from .console import Connection


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"OPENBATCH_{name}", default)


def _float_env(name: str) -> float | None:
    value = _env(name)
    return float(value) if value else None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openbatch", description="A self-hosted Azure Batch compatible service.")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server with its embedded defaults",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (OPENBATCH_HOST)")
    serve.add_argument("--port", type=int, default=int(_env("PORT", "8080")), help="port (OPENBATCH_PORT)")
    serve.add_argument("--data-dir", type=Path, default=Path(_env("DATA_DIR") or default_data_dir()),
                       help="where the SQLite store and the generated key live (OPENBATCH_DATA_DIR)")
    serve.add_argument("--account", default=_env("ACCOUNT", "openbatch"), help="default account name (OPENBATCH_ACCOUNT)")
    serve.add_argument("--key", default=_env("KEY"), help="default account key, base64 (OPENBATCH_KEY); "
                       "generated on first start when absent")
    serve.add_argument("--database-url", default=_env("DATABASE_URL"),
                       help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (OPENBATCH_DATABASE_URL)")
    serve.add_argument("--extra-accounts", default=_env("EXTRA_ACCOUNTS", ""),
                       help="more accounts as NAME:KEY,NAME:KEY (OPENBATCH_EXTRA_ACCOUNTS)")
    serve.add_argument("--node-provider", choices=["local", "slurm", "none"], default=_env("NODE_PROVIDER", "local"),
                       help="local: pools get nodes run on this host (default); slurm: each node is a Slurm "
                            "allocation running an agent; none: no nodes (OPENBATCH_NODE_PROVIDER)")
    serve.add_argument("--slurm-partition", default=_env("SLURM_PARTITION"),
                       help="slurm provider: the partition of the allocations (a pool's metadata item "
                            "openbatch.slurm.partition overrides it; default: the cluster's) (OPENBATCH_SLURM_PARTITION)")
    serve.add_argument("--slurm-sbatch-options", default=_env("SLURM_SBATCH_OPTIONS", ""),
                       help="slurm provider: more sbatch options, e.g. '--time=08:00:00 --account=lab' "
                            "(OPENBATCH_SLURM_SBATCH_OPTIONS)")
    serve.add_argument("--slurm-max-queued", type=int, default=int(_env("SLURM_MAX_QUEUED", "16")),
                       help="slurm provider: allocations of this server waiting in the queue at once "
                            "(OPENBATCH_SLURM_MAX_QUEUED)")
    serve.add_argument("--slurm-node-root", type=Path, default=_env("SLURM_NODE_ROOT"),
                       help="slurm provider: where the nodes' directories go on the compute hosts (default: "
                            "<data-dir>/slurm-nodes) (OPENBATCH_SLURM_NODE_ROOT)")
    serve.add_argument("--nodes-per-agent", type=int, default=int(_env("NODES_PER_AGENT", "8")),
                       help="local nodes hosted by one agent process (OPENBATCH_NODES_PER_AGENT)")
    serve.add_argument("--node-lost-after", type=float, default=float(_env("NODE_LOST_AFTER", "10")),
                       help="seconds without a call before an agent's nodes are unusable and their tasks run "
                            "elsewhere (OPENBATCH_NODE_LOST_AFTER)")
    quotas = Quotas()
    serve.add_argument("--quota-dedicated-cores", type=int,
                       default=int(_env("QUOTA_DEDICATED_CORES", str(quotas.dedicated_cores))),
                       help="each account's dedicated core quota, counted from the pools' vmSize as Azure does; a "
                            "resize past it allocates up to it and reports AccountCoreQuotaReached "
                            "(OPENBATCH_QUOTA_DEDICATED_CORES)")
    serve.add_argument("--quota-pools", type=int, default=int(_env("QUOTA_POOLS", str(quotas.pools))),
                       help="each account's pool quota (PoolQuotaReached past it) (OPENBATCH_QUOTA_POOLS)")
    serve.add_argument("--quota-active-jobs", type=int,
                       default=int(_env("QUOTA_ACTIVE_JOBS", str(quotas.active_jobs))),
                       help="each account's quota of jobs not completed (ActiveJobAndScheduleQuotaReached past it) "
                            "(OPENBATCH_QUOTA_ACTIVE_JOBS)")
    serve.add_argument("--auto-storage", default=_env("AUTO_STORAGE"),
                       help="connection string of the Azure Storage account linked as auto-storage: resource "
                            "files with autoStorageContainerName come from it (Azurite's works) "
                            "(OPENBATCH_AUTO_STORAGE)")
    serve.add_argument("--min-interval", type=float, default=_float_env("MIN_INTERVAL"),
                       help="local development: lower Azure's minimum intervals (job schedule recurrenceInterval and "
                            "startWindow: 1 min; autoScaleEvaluationInterval: 5 min) to this many seconds "
                            "(OPENBATCH_MIN_INTERVAL)")
    serve.add_argument("--sample-interval", type=float, default=float(_env("SAMPLE_INTERVAL", "30")),
                       help="seconds between the samples of pool metrics autoscale formulas read (Azure: 30) "
                            "(OPENBATCH_SAMPLE_INTERVAL)")
    serve.add_argument("--spot-preemption-rate", type=float, default=float(_env("SPOT_PREEMPTION_RATE", "0")),
                       help="rehearse spot VMs: preempt each low-priority node at this rate (per node and hour; "
                            "default 0: never); `openbatch preempt` preempts on request (OPENBATCH_SPOT_PREEMPTION_RATE)")
    serve.add_argument("--prefetch", action=argparse.BooleanOptionalAction,
                       default=_env("PREFETCH", "1").lower() not in ("0", "false", "no"),
                       help="reserve tasks for full nodes, so their agents start them the moment a slot frees "
                            "(docs/execution.md, 'Prefetch'; on by default) (OPENBATCH_PREFETCH=0 turns it off)")
    serve.add_argument("--spot-recovery", type=float, default=float(_env("SPOT_RECOVERY", "60")),
                       help="seconds a preempted node waits before it comes back (OPENBATCH_SPOT_RECOVERY)")
    serve.add_argument("--log-level", choices=logs.LEVELS, default=_env("LOG_LEVEL", "info"),
                       help="the least level logged; debug adds a line per task state change (OPENBATCH_LOG_LEVEL)")
    serve.add_argument("--log-format", choices=logs.FORMATS, default=_env("LOG_FORMAT", "text"),
                       help="log lines as text, or as one JSON object each (OPENBATCH_LOG_FORMAT)")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction,
                       default=_env("ACCESS_LOG", "false").lower() in ("1", "true", "yes", "on"),
                       help="log every Batch API request at info: operation, status, duration, request id; off by "
                            "default: a line costs about 24 us, some 8%% of a core at 3,500 requests/s "
                            "(OPENBATCH_ACCESS_LOG)")
    serve.add_argument("--metrics-token", default=_env("METRICS_TOKEN"),
                       help="require 'Authorization: Bearer TOKEN' on /metrics (default: open, as /health and "
                            "/ready are) (OPENBATCH_METRICS_TOKEN)")
    serve.add_argument("--dashboard-tokens", default=_env("DASHBOARD_TOKENS", ""),
                       help="read-only dashboard sign-in as NAME:TOKEN,NAME:TOKEN (the account's key signs in "
                            "with every right) (OPENBATCH_DASHBOARD_TOKENS)")
    agent = commands.add_parser("agent", help="host compute nodes of a pool and run their tasks")
    agent.add_argument("--server", required=True, help="the openbatch server URL; several servers of one database comma-separated "
                       "(an agent that gets no answer moves on to the next)")
    agent.add_argument("--pool", required=True, help="the pool the nodes join")
    agent.add_argument("--account", default=_env("ACCOUNT"), help="account name (OPENBATCH_ACCOUNT)")
    agent.add_argument("--key", default=_env("KEY"), help="account key for registering (OPENBATCH_KEY)")
    agent.add_argument("--nodes", type=int, default=0, help="how many new nodes this agent brings to the pool")
    agent.add_argument("--node", action="append", default=[], help=argparse.SUPPRESS)  # local nodes, by the server
    agent.add_argument("--root", type=Path, default=None, help="where the nodes' directories live")
    agent.add_argument("--log-dir", type=Path, default=None,
                       help="where the agent keeps its log files (UploadBatchServiceLogs sends them); "
                            "default: <root>/agent-logs")
    preempt = commands.add_parser("preempt", help="preempt low-priority nodes of a pool now, as Azure takes spot "
                                  "VMs back (their tasks are requeued; they return after --spot-recovery)")
    preempt.add_argument("pool", help="the pool")
    preempt.add_argument("nodes", nargs="*", help="node ids (default: every low-priority node that can be preempted)")
    status = commands.add_parser("status", help="the account at a glance: pools, nodes, slots, jobs and tasks by state")
    watch = commands.add_parser("watch", help="a job's tasks progress, live, until the job ends (exit status 1 if "
                                "a task failed)")
    watch.add_argument("job", help="the job id")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between looks")
    for client in (preempt, status, watch):
        client.add_argument("--server", default=_env("SERVER", "http://127.0.0.1:8080"),
                            help="the openbatch server URL (OPENBATCH_SERVER)")
        client.add_argument("--account", default=_env("ACCOUNT", "openbatch"), help="account name (OPENBATCH_ACCOUNT)")
        client.add_argument("--key", default=_env("KEY"), help="account key (OPENBATCH_KEY; default: the one "
                            "`openbatch serve` keeps in its data dir, OPENBATCH_DATA_DIR)")
    return root


def _connection(args: argparse.Namespace) -> "Connection":
    from .console import Connection

    return Connection.resolve(args.server, args.account, args.key, Path(_env("DATA_DIR") or default_data_dir()),
                              args.command)


def _preempt(args: argparse.Namespace) -> None:
    import httpx

    from .auth.client import SharedKeyAuth

    connection = _connection(args)
    response = httpx.post(f"{connection.server}/openbatch/pools/{args.pool}/preemptnodes",
                          params={"api-version": "2024-07-01.20.0"}, json={"nodeList": args.nodes},
                          auth=SharedKeyAuth(connection.account, connection.key), timeout=30)
    if response.status_code != 200:
        error = response.json() if response.content else {}
        raise SystemExit(f"openbatch preempt: {response.status_code} {error.get('code', '')}: "
                         f"{(error.get('message') or {}).get('value', response.text)}")
    preempted = response.json()["preempted"]
    print(f"preempted {len(preempted)} node(s)" + "".join(f"\n  {node}" for node in preempted))


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        from .server import serve

        serve(
            Settings(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                account=args.account,
                key=args.key,
                database_url=args.database_url,
                extra_accounts=parse_accounts(args.extra_accounts or ""),
                node_provider=args.node_provider,
                nodes_per_agent=args.nodes_per_agent,
                node_lost_after=args.node_lost_after,
                quota_dedicated_cores=args.quota_dedicated_cores,
                quota_pools=args.quota_pools,
                quota_active_jobs=args.quota_active_jobs,
                auto_storage=args.auto_storage,
                min_interval=args.min_interval,
                spot_preemption_rate=args.spot_preemption_rate,
                spot_recovery=args.spot_recovery,
                prefetch=args.prefetch,
                sample_interval=args.sample_interval,
                slurm_partition=args.slurm_partition,
                slurm_sbatch_options=args.slurm_sbatch_options or "",
                slurm_max_queued=args.slurm_max_queued,
                slurm_node_root=Path(args.slurm_node_root) if args.slurm_node_root else None,
                log_level=args.log_level,
                log_format=args.log_format,
                access_log=args.access_log,
                metrics_token=args.metrics_token,
                dashboard_tokens=parse_accounts(args.dashboard_tokens or ""),
            )
        )
    elif args.command == "preempt":
        _preempt(args)
    elif args.command == "status":
        from .console import status

        status(_connection(args))
    elif args.command == "watch":
        from .console import watch

        raise SystemExit(watch(_connection(args), args.job, args.interval))
    elif args.command == "agent":
        if not args.node and args.nodes < 1:
            raise SystemExit("openbatch agent: --nodes must be at least 1")
        from .agent.main import main as agent_main

        agent_main(args)


if __name__ == "__main__":
    main()
