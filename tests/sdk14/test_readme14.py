"""README.md's azure-batch 14.x example, as written, in the venv that has azure-batch 14.2."""

from __future__ import annotations

from pathlib import Path

from tests.support.live import free_port
from tests.support.readme import FreshServer, under


def test_the_azure_batch_14_example_runs_as_written(tmp_path: Path) -> None:
    server = FreshServer.start(tmp_path / "data", free_port())
    try:
        (example,) = under("azure-batch 14.x (Python, msrest)", "python")
        ran = server.python(example.code)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "'active': 0" in ran.stdout or "active" in ran.stdout, ran.stdout
    finally:
        server.stop()
