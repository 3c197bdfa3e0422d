"""The garbage collector, set for a long-running process that allocates many short-lived objects.

Everything imported and built at startup (modules, the app, SQLAlchemy's tables and compiled statements)
lives as long as the process. Left in the collector's oldest generation, every full collection walks it
again: about 70 ms with the server's objects, every thread stopped (the longest AddTaskCollection call
of 100,000 tasks ingested took 84-95 ms with it, 20-33 ms after). Frozen after startup, a full collection
walks only what came since (about 2 ms).

The youngest generation is collected after 10,000 net allocations, not 700: a request allocates and frees
thousands of objects that hold no cycles, so the default ran ~900 collections during that ingest, which
now needs almost none.
"""

from __future__ import annotations

import gc

#: Net allocations between collections of the youngest generation (CPython's default is 700); the older
#: generations keep their default ratios.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, move every object alive now out of the collector's sight (gc.freeze), and collect the
    youngest generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
