"""The Celery app of the Celery peer (``--peers``): one task that runs ``/bin/true``; Redis on loopback."""

from __future__ import annotations

import subprocess

from celery import Celery  # type: ignore[import-not-found]

BROKER = "redis://127.0.0.1:6379/15"

app = Celery("openbatch_bench", broker=BROKER, backend=BROKER)


@app.task
def run_true() -> int:
    return subprocess.run(["/bin/true"], check=False).returncode
