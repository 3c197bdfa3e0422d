"""Assemble and run the server: store, services, API."""

from __future__ import annotations

import logging

import uvicorn

from .api.app import BatchApp
from .config import Settings
from .services import Services
from .store.engine import Store


def build(settings: Settings) -> tuple[BatchApp, Store]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.resolved_database_url())
    store.migrate()
    accounts = settings.accounts()
    local = settings.node_provider == "local"
    services = Services.create(store, node_provider=local)
    runtime = None
    if local:
        from .runtime import Runtime

        runtime = Runtime(services, accounts, settings.data_dir, settings.server_url(),
                          nodes_per_agent=settings.nodes_per_agent, node_lost_after=settings.node_lost_after)
    app = BatchApp(services, accounts, runtime=runtime)
    return app, store


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app, store = build(settings)
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
        store.dispose()
