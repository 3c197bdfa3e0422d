"""One module per figure: ``KEY``, ``TITLE``, ``NEEDS`` (shared fixtures), ``run(suite) -> rows``."""

from __future__ import annotations

from types import ModuleType

from . import counts, ingest, latency, outputs, prep_release, scale, servers, slurm, throughput

#: In the order they run; the big job (4, 5) last but one so its server is gone before 6 starts 1,000 nodes.
FIGURES: list[ModuleType] = [throughput, latency, ingest, counts, scale, prep_release, outputs, slurm, servers]
BY_KEY = {module.KEY: module for module in FIGURES}
