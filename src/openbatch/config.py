"""Settings for ``openbatch serve``: command-line flags over ``OPENBATCH_*`` variables over defaults."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .domain.intervals import Intervals
from .domain.quotas import Quotas
from .domain.spot import Spot

DEFAULT_ACCOUNT = "openbatch"
KEY_FILE = "account.key"
_DEFAULT_QUOTAS = Quotas()


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/openbatch`` (``~/.local/share/openbatch``); ``/var/lib/openbatch`` for root, whose
    home other users cannot pass through (tasks run as their own accounts in the nodes' directories)."""
    if os.environ.get("XDG_DATA_HOME"):
        return Path(os.environ["XDG_DATA_HOME"]) / "openbatch"
    if os.geteuid() == 0:
        return Path("/var/lib/openbatch")
    return Path.home() / ".local" / "share" / "openbatch"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    account: str = DEFAULT_ACCOUNT
    key: str | None = None
    database_url: str | None = None
    extra_accounts: dict[str, str] = field(default_factory=dict)
    #: "local": pools get compute nodes run by agent processes on this host; "slurm": each node is a Slurm
    #: allocation running an agent; "none": pools get no nodes.
    node_provider: str = "local"
    nodes_per_agent: int = 8
    #: Seconds without a call from an agent before its nodes become unusable.
    node_lost_after: float = 10.0
    #: Every account's quotas (Azure's account quotas): dedicated cores, pools, active jobs.
    quota_dedicated_cores: int = _DEFAULT_QUOTAS.dedicated_cores
    quota_pools: int = _DEFAULT_QUOTAS.pools
    quota_active_jobs: int = _DEFAULT_QUOTAS.active_jobs
    #: ``slurm`` provider: the partition (None: the cluster's default), extra sbatch options, how many
    #: allocations may wait in the queue at once, where the nodes' directories go on the compute hosts.
    slurm_partition: str | None = None
    slurm_sbatch_options: str = ""
    slurm_max_queued: int = 16
    slurm_node_root: Path | None = None
    #: Connection string of the auto-storage account (ResourceFile.autoStorageContainerName), if any.
    auto_storage: str | None = None
    #: Local development: Azure's minimum intervals (a job schedule's recurrence and start window, 1 min;
    #: a pool's autoscale evaluation, 5 min) lowered to this many seconds; and how often pool metrics
    #: are sampled for autoscale formulas (Azure: 30 s).
    min_interval: float | None = None
    sample_interval: float = 30.0
    #: Rehearsing spot VMs: each low-priority node is preempted at this rate (per node and hour; 0: never),
    #: and comes back this many seconds later.
    spot_preemption_rate: float = 0.0
    spot_recovery: float = 60.0
    #: Prefetch (docs/execution.md): rounds reserve tasks for full nodes, whose agents start them as slots free.
    prefetch: bool = True
    #: Logging: the least level logged (debug, info, warning, error), lines as text or json, and
    #: whether every Batch API request is logged (at info, on the openbatch.access logger).
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = False
    #: /metrics wants ``Authorization: Bearer <this>`` when set (None: open, as /health and /ready are).
    metrics_token: str | None = None
    #: Read-only dashboard sign-in: account name -> token (the account's key signs in as an operator).
    dashboard_tokens: dict[str, str] = field(default_factory=dict)

    def spot(self) -> Spot:
        return Spot(max(0.0, self.spot_preemption_rate), timedelta(seconds=max(0.0, self.spot_recovery)))

    def intervals(self) -> Intervals:
        minimum = timedelta(seconds=self.min_interval) if self.min_interval is not None else None
        return Intervals.lowered(minimum, timedelta(seconds=self.sample_interval))

    def quotas(self) -> Quotas:
        return Quotas(self.quota_dedicated_cores, self.quota_pools, self.quota_active_jobs)

    def server_url(self) -> str:
        """How local agents reach this server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openbatch.db').resolve()}"

    def accounts(self) -> dict[str, bytes]:
        """Account name -> decoded key, the default account first."""
        keys = {self.account: self.account_key(), **self.extra_accounts}
        return {name: decode_key(name, key) for name, key in keys.items()}

    def account_key(self) -> str:
        """The default account's key: given, or read from (or first written to) the data directory."""
        if self.key:
            return self.key
        path = self.data_dir / KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(64)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key


def decode_key(name: str, key: str) -> bytes:
    try:
        return base64.b64decode(key, validate=True)
    except ValueError:
        raise SystemExit(f"openbatch: the key of account {name!r} is not valid base64") from None


def parse_accounts(text: str) -> dict[str, str]:
    """``name:key,name:key`` (base64 keys never contain ':' or ',')."""
    accounts = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, key = item.partition(":")
        if not sep or not name or not key:
            raise SystemExit(f"openbatch: expected NAME:KEY in the account list, got {item!r}")
        accounts[name] = key
    return accounts
