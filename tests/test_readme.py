"""Every example of README.md runs as written against a fresh `openbatch serve` (its endpoint and key
swapped in): azure-batch 15, the terminal commands, schedules and autoscale, /metrics, an agent joining
from "another host", the az CLI. The azure-batch 14 example runs in tests/sdk14/test_readme14.py; the
install and test commands are what CI itself runs."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.live import free_port
from tests.support.readme import FreshServer, blocks, under

ROOT = Path(__file__).resolve().parent.parent
AZ = ROOT / ".venv-az" / "bin" / "az"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FreshServer]:
    started = FreshServer.start(tmp_path / "data", free_port())
    try:
        yield started
    finally:
        started.stop()


def test_every_example_is_run_by_a_test() -> None:
    """A new example needs a test here (or in tests/sdk14), or a reason in this list not to."""
    tested = {"azure-batch 15.x (Python)", "azure-batch 14.x (Python, msrest)", "az CLI",
              "Schedules, autoscale, spot nodes", "Watching it run", "More machines: `openbatch agent`"}
    not_run = {"openbatch": "the install and test commands: CI runs them", "Layout": "a listing",
               "Using it": "the banner openbatch serve prints (tests/test_cli.py reads it)",
               "Performance": "python -m bench runs for minutes: bench/ is its own harness"}
    for block in blocks():
        assert block.heading in tested or block.heading in not_run, \
            f"README.md line {block.line}: the example under '{block.heading}' is run by no test"


def test_the_python_examples_and_the_terminal_run_as_written(server: FreshServer) -> None:
    (first,) = under("azure-batch 15.x (Python)", "python")
    (more,) = under("Schedules, autoscale, spot nodes", "python")
    ran = server.python(first.code + "\n" + more.code)   # one reader's session: the second uses `client`
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "nightly:job-1" in ran.stdout and "$TargetDedicatedNodes=1" in ran.stdout, ran.stdout

    (terminal,) = under("azure-batch 15.x (Python)", "sh")
    status, watch = [line.split("#")[0].strip() for line in terminal.code.splitlines()]
    shown = server.shell(status)
    assert shown.returncode == 0 and "pool-1" in shown.stdout, shown.stdout + shown.stderr
    watched = server.shell(watch)
    assert watched.returncode == 0 and "all 100 task(s) succeeded" in watched.stdout, watched.stdout + watched.stderr

    (scrape,) = [b for b in under("Watching it run", "") if b.code.startswith("$ curl")]
    command = scrape.code.splitlines()[0].removeprefix("$ ")
    scraped = server.shell(command)
    assert scraped.returncode == 0, scraped.stderr
    completed = re.search(r'openbatch_tasks\{account="openbatch",pool="pool-1",state="completed"\} (\d+)', scraped.stdout)
    assert completed and int(completed.group(1)) >= 100, scraped.stdout   # (and the schedule's job manager)


def test_an_agent_joins_as_the_readme_says(server: FreshServer) -> None:
    (pool,) = under("azure-batch 15.x (Python)", "python")
    created = server.python(pool.code.split("client.create_job(")[0])   # the client and pool-1 (2 nodes)
    assert created.returncode == 0, created.stderr
    (join,) = under("More machines: `openbatch agent`", "sh")
    env = {**FreshServer.environment(), "PYTHONPATH": str(ROOT / "src"),
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    agent = subprocess.Popen(["bash", "-c", "exec " + server.as_written(join.code)], env=env, cwd=server.data_dir,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_idle_nodes("pool-1", 2 + 4)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)


def test_the_az_cli_example(server: FreshServer) -> None:
    if not AZ.exists():
        pytest.skip("the Azure CLI is not installed in .venv-az (scripts/test.sh installs it)")
    (example,) = under("az CLI", "sh")
    ran = server.run(["bash", "-c", server.as_written(example.code)], PATH=f"{AZ.parent}:/usr/bin:/bin")
    assert ran.returncode == 0 and ran.stdout.strip() == "[]", ran.stdout + ran.stderr
