"""``python -m bench.sampler serve ...``: run ``openbatch serve`` under a per-thread CPU profiler.

Used by ``python -m bench --profile``. Every thread of the server (the event loop and the
worker threads that run services) gets its own ``cProfile.Profile`` timed by
``time.thread_time``, so each function is charged the CPU its thread spent in it, not the
time the thread waited for the GIL, a lock or the SQLite write lock (waits cost no CPU and
do not show; compare the server's CPU seconds with the wall time for those). When the
server exits, the merged statistics go to the JSON file named by ``OPENBATCH_BENCH_PROFILE``:
the functions with the most cumulative and the most own CPU. Profiling slows the server
down (roughly 1.5-2x on Python-heavy paths); figures measured with it are not comparable.
"""

from __future__ import annotations

import atexit
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _short(path: str, line: int, name: str) -> str:
    marker = "/openbatch/"
    if marker in path:
        path = path[path.rindex(marker) + 1:]
    elif "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[-1]
    elif "/lib/python" in path:
        path = "stdlib/" + path.rsplit("/", 1)[-1]
    return f"{path}:{name}" if path not in ("~", "") else name


def _start_thread_profile(*_: Any) -> None:
    """The first profile event of a new thread: give the thread its own CPU-timed profiler."""
    sys.setprofile(None)  # this thread's hook only starts its profiler; enable() installs cProfile's own
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


def _dump(path: str, main: cProfile.Profile) -> None:
    main.disable()
    with _lock:
        profiles = [main, *_profiles]
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        try:
            profile.disable()
        except Exception:  # noqa: BLE001 - a profiler of a finished thread
            pass
        try:
            stats.add(profile)
        except TypeError:  # a thread's profile with no data
            pass
    rows = []
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in table.items():
        rows.append((_short(filename, line, name), calls, own, cumulative))
    total = sum(own for _, _, own, _ in rows)
    merged: dict[str, list[float]] = {}
    for name, calls, own, cumulative in rows:
        entry = merged.setdefault(name, [0, 0.0, 0.0])
        entry[0] += calls
        entry[1] += own
        entry[2] = max(entry[2], cumulative)
    by_cumulative = sorted(merged.items(), key=lambda kv: kv[1][2], reverse=True)[:80]
    by_own = sorted(merged.items(), key=lambda kv: kv[1][1], reverse=True)[:40]
    data = {"cpu_seconds": total, "threads": len(profiles),
            "cumulative": [[name, round(v[2], 3), int(v[0])] for name, v in by_cumulative],
            "own": [[name, round(v[1], 3), int(v[0])] for name, v in by_own]}
    with open(path, "w") as handle:
        json.dump(data, handle)


def main() -> None:
    path = os.environ.get("OPENBATCH_BENCH_PROFILE")
    if path:
        threading.setprofile(_start_thread_profile)
        main_profile = cProfile.Profile(time.thread_time)
        atexit.register(_dump, path, main_profile)
        main_profile.enable()
    from openbatch.cli import main as openbatch_main

    openbatch_main(sys.argv[1:])


if __name__ == "__main__":
    main()
