"""Assemble and run the server: store, services, API."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import socket
import sys
import threading
from typing import Any, Callable, Iterator

import uvicorn

from . import gc_tuning, logs, metrics
from .api.app import BatchApp
from .auth import task_tokens
from .config import Settings
from .scheduler.timers import Timers
from .services.auto_storage import AutoStorage
from .services import Services
from .store.engine import Store
from .store.lease import Holder, Lease, LeaseHeld

log = logging.getLogger("openbatch.server")
#: How long a stopping server waits for requests under way (agents' long-polls end at once).
SHUTDOWN_GRACE_SECONDS = 2


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
    services.ctx.prefetch = settings.prefetch
    services.ctx.issue_token = lambda account, job_id: task_tokens.issue(account, accounts[account], job_id,
                                                                         services.ctx.now())
    runtime = None
    if hosted:
        from .runtime import Runtime

        runtime = Runtime(services, accounts, settings.data_dir, settings.server_url(),
                          nodes_per_agent=settings.nodes_per_agent, node_lost_after=settings.node_lost_after,
                          provider=settings.node_provider, slurm=_slurm_settings(settings))
    timers = Timers(services, leading=(lambda: runtime.leading) if runtime is not None else (lambda: True))
    app = BatchApp(services, accounts, runtime=runtime, lease=lease, timers=timers,
                   metrics_token=settings.metrics_token, dashboard_tokens=settings.dashboard_tokens)
    return app, store


def _slurm_settings(settings: Settings) -> Any:
    from .nodes.slurm import SlurmSettings

    return SlurmSettings(partition=settings.slurm_partition, sbatch_options=shlex.split(settings.slurm_sbatch_options),
                         max_queued=max(1, settings.slurm_max_queued), node_root=settings.slurm_node_root)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: a port in use ends the command at once,
    saying so, with nothing started and the database untouched."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"openbatch: cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(2048)
    sock.set_inheritable(False)   # (the agents the server starts must not hold it)
    return sock


class Server(uvicorn.Server):
    """uvicorn's server, told what the app needs at the edges of its life: ``announce`` once it serves;
    the app's long-polls and streams end before uvicorn waits for open connections to close; a signal
    ends the process with status 0 once it stopped (uvicorn would raise it again, and SIGINT would
    then print a KeyboardInterrupt traceback)."""

    def __init__(self, config: uvicorn.Config, app: BatchApp, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.app = app
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.announce()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("stopping")
        self.app.begin_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(settings: Settings) -> None:
    try:
        logs.configure(settings.log_level, settings.log_format)
    except ValueError as error:
        raise SystemExit(f"openbatch: {error}") from None
    if not settings.access_log:
        logging.getLogger("openbatch.access").setLevel(logging.WARNING)
    metrics.GC_PAUSES.install()
    sock = bind(settings.host, settings.port)
    try:
        app, store = build(settings)
    except LeaseHeld as held:
        sock.close()
        print(f"openbatch: {held}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    endpoint = f"http://{settings.host}:{settings.port}"

    def announce() -> None:
        gc_tuning.settle()   # what startup built lives as long as the process
        print(f"openbatch listening on {endpoint}", flush=True)
        print(f"  account: {settings.account}", flush=True)
        print(f"  key:     {settings.account_key()}", flush=True)
        print(f"  store:   {store.engine.url.render_as_string(hide_password=True)}", flush=True)
        print(f"  dashboard: {endpoint}/ui/", flush=True)
        print(f"  metrics: {endpoint}/metrics", flush=True)

    # log_config None: the logging set up above stays as it is (uvicorn's own would replace it).
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    try:
        Server(config, app, announce).run(sockets=[sock])
    finally:
        sock.close()
        app.lease.release()
        store.dispose()
