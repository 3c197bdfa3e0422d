"""Shared fixtures: stores (SQLite, PostgreSQL), a live server per store, and contract checks.

PostgreSQL tests use a fresh database created for this run and dropped after it;
without a reachable server (OPENBATCH_TEST_PG_URL, default 127.0.0.1:5432) they are
skipped with the reason.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from openbatch.store.engine import Store
from tests.support.azurite import Azurite, start_azurite
from tests.support.live import ACCOUNT, DASHBOARD_TOKEN, LiveServer, start_server
from tests.support.slurm import slurm_unavailable
from tests.support.swagger import load_spec

PG_ADMIN_URL = os.environ.get("OPENBATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
HITS_DIR = Path(__file__).resolve().parent.parent / "build" / "coverage-hits"


@pytest.fixture(scope="session", autouse=True)
def _passable_temp_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Temporary directories other users may pass through: tasks run as their own accounts (``_azbatch``
    and others) in node directories made under them, which pytest makes 0700."""
    base = tmp_path_factory.getbasetemp()
    for directory in (base.parent, base):
        directory.chmod(0o755)
    make = tmp_path_factory.mktemp

    def mktemp(basename: str, numbered: bool = True) -> Path:
        path = make(basename, numbered)
        path.chmod(0o755)
        return path

    tmp_path_factory.mktemp = mktemp  # type: ignore[method-assign]   (tmp_path is made through it too)


@pytest.fixture(scope="session", autouse=True)
def _no_task_accounts_left() -> Iterator[None]:
    """The task-scope and named accounts the session's nodes made leave the host with it (a server
    stopped by a test keeps its nodes' accounts, as it keeps their directories)."""
    yield
    import pwd
    import subprocess

    for entry in pwd.getpwall():
        if entry.pw_gecos.startswith(("openbatch task ", "openbatch pool ", "openbatch node ")):
            subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True, check=False)


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    last: Exception | None = None
    for url in (PG_ADMIN_URL, PG_ADMIN_URL.replace("postgres@", "root@")):
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=3)
        except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
            last = exc
    raise RuntimeError(str(last))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Make fresh PostgreSQL databases for this test run; all are dropped at the end."""
    try:
        admin = _pg_admin_connect()
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); the PostgreSQL half is skipped")
    names: list[str] = []

    def make() -> str:
        name = f"openbatch_test_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return f"postgresql+psycopg://{admin.info.user}@{admin.info.host}:{admin.info.port}/{name}"

    try:
        yield make
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_store(postgres_databases: Callable[[], str]) -> Iterator[Store]:
    """A migrated PostgreSQL store of its own, for this test only."""
    store = Store(postgres_databases())
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store of each kind, for this test only (PostgreSQL: a database of its own)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_databases")()
    else:
        url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def spec():  # type: ignore[no-untyped-def]
    return load_spec()


_servers: list[LiveServer] = []


def _serve(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec, name: str,  # type: ignore[no-untyped-def]
           **options) -> Iterator[LiveServer]:
    """Run a server on the store named by the fixture's parameter, for the whole session."""
    database_url = request.getfixturevalue("postgres_databases")() if request.param == "postgres" else None
    server = start_server(tmp_path_factory.mktemp(f"{name}-{request.param}"), database_url, request.param, spec,
                          **options)
    _servers.append(server)
    try:
        yield server
    finally:
        server.stop()
        server.app.services.pools.ctx.store.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A running openbatch server (pools get no nodes), once on SQLite and once on PostgreSQL; job
    schedules may recur every 2 seconds (a development setting; Azure's minimum is a minute)."""
    yield from _serve(request, tmp_path_factory, spec, "data", min_interval=2.0)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """A running server whose pools get real local compute nodes (agent processes), on both stores; job
    schedules may recur and pools autoscale every 2 seconds, on pool metrics sampled every second (development
    settings; Azure's are a minute, 5 minutes and 30 seconds); a preempted low-priority node comes back after 3 s."""
    yield from _serve(request, tmp_path_factory, spec, "nodes", node_provider="local", nodes_per_agent=1,
                      node_lost_after=3.0, min_interval=2.0, sample_interval=1.0, spot_recovery=3.0,
                      dashboard_tokens={ACCOUNT: DASHBOARD_TOKEN})


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's Blob service on a loopback port for the session (skips, saying why, without it)."""
    try:
        emulator = start_azurite(tmp_path_factory.mktemp("azurite"))
    except RuntimeError as exc:
        pytest.skip(f"no Blob storage to test against: {exc}")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec,  # type: ignore[no-untyped-def]
                 azurite: Azurite) -> Iterator[LiveServer]:
    """A server with real local nodes whose auto-storage account is Azurite, on both stores."""
    yield from _serve(request, tmp_path_factory, spec, "storage", node_provider="local", nodes_per_agent=1,
                      node_lost_after=3.0, auto_storage=azurite.connection_string)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_slurm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, spec  # type: ignore[no-untyped-def]
               ) -> Iterator[LiveServer]:
    """A server whose pools' nodes are Slurm allocations (scripts/slurm.sh), on both stores; skips without Slurm."""
    why = slurm_unavailable()
    if why:
        pytest.skip(why)
    yield from _serve(request, tmp_path_factory, spec, "slurm", node_provider="slurm", node_lost_after=5.0)


@pytest.fixture(autouse=True)
def _contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose requests got a response that breaks the Swagger contract."""
    name = next((n for n in ("live", "live_nodes", "live_storage", "live_slurm") if n in request.fixturenames),
                None)
    if name is None:
        yield
        return
    server: LiveServer = request.getfixturevalue(name)
    before = len(server.recorder.violations)
    yield
    new = server.recorder.violations[before:]
    assert not new, "responses that break the Swagger contract:\n" + "\n".join(new)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep which operations which client reached (docs/coverage.md is generated from these)."""
    hits = sorted({hit for server in _servers for hit in server.recorder.hits})
    if not hits:
        return
    HITS_DIR.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("OPENBATCH_HITS_NAME", "main")
    (HITS_DIR / f"{worker}.json").write_text(json.dumps([list(h) for h in hits], indent=0))


def _azure_batch_major() -> int:
    try:
        from importlib.metadata import version

        return int(version("azure-batch").split(".")[0])
    except Exception:  # noqa: BLE001
        return 0


# tests/sdk14 needs azure-batch 14.x and runs in its own virtualenv (scripts/test.sh); tests/sdk needs 15.x.
collect_ignore = ["sdk14"] if _azure_batch_major() != 14 else ["sdk", "unit", "store", "support", "api"]
