"""Assemble and run the server: store, services, API."""

from __future__ import annotations

import logging
import shlex
import sys
from typing import Any

import uvicorn

from .api.app import BatchApp
from .auth import task_tokens
from .config import Settings
from .scheduler.timers import Timers
from .services.auto_storage import AutoStorage
from .services import Services
from .store.engine import Store
from .store.lease import Holder, Lease, LeaseHeld


def build(settings: Settings) -> tuple[BatchApp, Store]:
    """The app on its store, migrated; raises :class:`LeaseHeld` if another server uses the database."""
    try:
        auto_storage = AutoStorage.from_connection_string(settings.auto_storage) if settings.auto_storage else None
    except ValueError as exc:
        raise SystemExit(f"openbatch: --auto-storage: {exc}") from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    lease = Lease(url)
    lease.acquire(Holder(url=settings.server_url()))
    try:
        store = Store(url)
        store.migrate()
    except BaseException:
        lease.release()
        raise
    accounts = settings.accounts()
    hosted = settings.node_provider in ("local", "slurm")
    services = Services.create(store, node_provider=hosted, quotas=settings.quotas(), auto_storage=auto_storage,
                               intervals=settings.intervals(), spot=settings.spot())
    services.ctx.issue_token = lambda account, job_id: task_tokens.issue(account, accounts[account], job_id,
                                                                         services.ctx.now())
    runtime = None
    if hosted:
        from .runtime import Runtime

        runtime = Runtime(services, accounts, settings.data_dir, settings.server_url(),
                          nodes_per_agent=settings.nodes_per_agent, node_lost_after=settings.node_lost_after,
                          provider=settings.node_provider, slurm=_slurm_settings(settings))
    timers = Timers(services, leading=(lambda: runtime.leading) if runtime is not None else (lambda: True))
    app = BatchApp(services, accounts, runtime=runtime, lease=lease, timers=timers)
    return app, store


def _slurm_settings(settings: Settings) -> Any:
    from .nodes.slurm import SlurmSettings

    return SlurmSettings(partition=settings.slurm_partition, sbatch_options=shlex.split(settings.slurm_sbatch_options),
                         max_queued=max(1, settings.slurm_max_queued), node_root=settings.slurm_node_root)


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app, store = build(settings)
    except LeaseHeld as held:
        print(f"openbatch: {held}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    endpoint = f"http://{settings.host}:{settings.port}"
    print(f"openbatch listening on {endpoint}", flush=True)
    print(f"  account: {settings.account}", flush=True)
    print(f"  key:     {settings.account_key()}", flush=True)
    print(f"  store:   {store.engine.url.render_as_string(hide_password=True)}", flush=True)
    try:
        # Agents hold long-polls open; don't let them hold up a shutdown.
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                    lifespan="on", timeout_graceful_shutdown=2)
    finally:
        app.lease.release()
        store.dispose()
