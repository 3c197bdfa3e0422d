"""The run's context handed to every figure: sizes, servers on the chosen store, progress, fixtures."""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, \
    TimeElapsedColumn

from .dashboard import DashboardProcess
from .database import Databases
from .server import Server, start_server


class Step:
    """One progress line: ``advance``/``update`` it, it disappears when done."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)

    def update(self, completed: float | None = None, description: str | None = None) -> None:
        self.progress.update(self.task, completed=completed, description=description)

    def done(self) -> None:
        self.progress.remove_task(self.task)


def make_progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


@dataclass
class Suite:
    store: str
    quick: bool
    console: Console
    progress: Progress
    databases: Databases
    peers: bool = False
    profile_dir: Path | None = None
    #: Where the servers' data directories go (see ``--data-root``); None: the system temp directory.
    data_root: Path | None = None
    #: Dashboards kept open on every server (bench/dashboard.py).
    dashboards: int = 0
    #: Passed as given to every ``openbatch serve`` of the run (``--server-arg``).
    server_args: list[str] = field(default_factory=list)
    #: Values shared by figures (the million-task job), closed when no later figure needs them.
    fixtures: dict[str, Any] = field(default_factory=dict)
    closers: dict[str, ExitStack] = field(default_factory=dict)
    profiles: dict[str, Path] = field(default_factory=dict)
    #: Per server: wall seconds it ran, CPU seconds of the server process and of its agents.
    cpu: list[dict[str, Any]] = field(default_factory=list)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def budget(self, full: float, quick: float) -> float:
        """A time budget in seconds for one phase of a figure."""
        return quick if self.quick else full

    def log(self, message: str) -> None:
        self.progress.console.log(message)

    @contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        step = Step(self.progress, self.progress.add_task(description, total=total))
        try:
            yield step
        finally:
            step.done()

    @contextmanager
    def server(self, name: str, **options: Any) -> Iterator[Server]:
        """A fresh server on this run's store (a new PostgreSQL database for each)."""
        url = self.databases.new()
        profile = None
        if self.profile_dir is not None:
            profile = self.profile_dir / f"{self.store}-{name}-{int(time.time())}.json"
            self.profiles[name] = profile
        started = time.monotonic()  # CPU seconds include the server's start (imports, migrations)
        try:
            with self.step(f"starting server for {name} ({self.store})"):
                context = start_server(url, profile=profile, data_root=self.data_root,
                                       extra_args=self.server_args, **options)
                server = context.__enter__()
            watching = [DashboardProcess(server.url, server.account, server.key).start() for _ in range(self.dashboards)]
            try:
                yield server
            finally:
                seen = [dashboard.stop() for dashboard in watching]
                if seen:
                    self.log(f"{len(seen)} dashboard(s) open on {name}: {sum(s['events'] for s in seen)} live events, "
                             f"{sum(s['reads'] for s in seen)} reads")
                self.cpu.append({"server_for": name, "wall": time.monotonic() - started, **server.cpu()})
                with self.step(f"stopping server for {name}"):
                    context.__exit__(None, None, None)
        finally:
            self.databases.drop(url)

    def fixture(self, name: str, build: Callable[[ExitStack], Any]) -> Any:
        """A value shared between figures, built once by ``build`` (which registers its cleanup)."""
        if name not in self.fixtures:
            stack = ExitStack()
            try:
                self.fixtures[name] = build(stack)
            except BaseException:
                stack.close()
                raise
            self.closers[name] = stack
        return self.fixtures[name]

    def release(self, name: str) -> None:
        self.fixtures.pop(name, None)
        stack = self.closers.pop(name, None)
        if stack is not None:
            stack.close()

    def close(self) -> None:
        for name in list(self.closers):
            self.release(name)
