"""How the event loop calls a use case: in a worker thread, or in place when that is cheaper.

Whether a use case may run on the event loop is a property of the use case, declared once
where it is defined, not chosen by each caller:

- :func:`bounded_write` marks a use case that starts with its write transaction and whose
  work is bounded in size (one task, a collection of 100, one agent report). On SQLite it
  runs in place when the writer lock is free: the hop to a worker thread costs ~85 µs of
  CPU, more than a small write, and the writer is one lock anyway. When another thread
  holds it, the use case gives up before writing anything (the store's ``WriterBusy``) and
  goes to a worker thread, so the event loop never waits for someone else's transaction.
- :func:`point_read` marks a read of one indexed row. In WAL mode a SQLite reader never
  waits for the writer, and a point read costs less than the hop; a server database is a
  network round trip, which must not hold up the event loop.

Everything else runs in a worker thread.

Where the store reads on the event loop (PostgreSQL: store/loop_reads.py), a point read
``name`` with an async twin ``name_on_loop`` on its service runs that twin instead: no hop.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import anyio.to_thread

from ..store.engine import WriterBusy

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_MODE = "__openbatch_call__"


def bounded_write(fn: F) -> F:
    setattr(fn, _MODE, "write")
    return fn


def point_read(fn: F) -> F:
    setattr(fn, _MODE, "read")
    return fn


async def call(fn: Callable[..., R], *args: Any) -> R:
    """Run the use case ``fn`` (a bound method of a service) as it was declared to run."""
    mode = getattr(fn, _MODE, None)
    if mode is not None:
        store = fn.__self__.ctx.store  # type: ignore[attr-defined]
        if mode == "read" and store.loop_reads is not None:
            on_loop = getattr(fn.__self__, f"{fn.__name__}_on_loop", None)  # type: ignore[attr-defined]
            if on_loop is not None:
                return await on_loop(*args)  # type: ignore[no-any-return]
        if store.is_sqlite:
            if mode == "read":
                return fn(*args)
            try:
                with store.in_place():
                    return fn(*args)
            except WriterBusy:
                pass
    return await anyio.to_thread.run_sync(fn, *args)
