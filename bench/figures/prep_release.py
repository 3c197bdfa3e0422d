"""Figure 6, List Preparation And Release Task Status across a pool of 1,000 local nodes.

The server hosts 100 nodes per agent process (``--nodes-per-agent 100``: 10 agents).
A job with a preparation and a release task (both ``/bin/true``) gets one
``/bin/sleep`` task per node, long enough that every node takes one, so the
preparation runs on every node; then the job is terminated, so the release task runs
on every node that ran the preparation. The list is then read page by page
(``maxresults=1000``, following ``odata.nextLink``) several times.
"""

from __future__ import annotations

import time

from ..measure import Deadline, percentile, wait_until
from ..results import Row, at_most
from ..server import CLIENT_NAME, Client, collection_bodies
from ..suite import Suite

KEY = "prep_release"
TITLE = "6 prep/release status"
NEEDS: tuple[str, ...] = ()
NODES_PER_AGENT = 100
REPEAT = 7
LIST = "/jobs/prjob/jobpreparationandreleasetaskstatus"


def _list(client: Client) -> tuple[list[float], int, int]:
    """(ms per page, entries, entries whose release completed) for one full listing."""
    times: list[float] = []
    entries = released = 0
    url: str | None = None
    for _ in range(100):  # bounded: 100,000 nodes
        began = time.perf_counter()
        response = client.ok(client.get_url(url) if url else client.get(LIST, {"maxresults": "1000"}))
        times.append((time.perf_counter() - began) * 1000)
        page = response.json()
        entries += len(page["value"])
        released += sum(1 for e in page["value"]
                        if e.get("jobReleaseTaskExecutionInfo", {}).get("state") == "completed")
        url = page.get("odata.nextLink")
        if not url:
            break
    return times, entries, released


def run(suite: Suite) -> list[Row]:
    nodes = suite.size(1_000, 100)
    notes: list[str] = []
    with suite.server(KEY, nodes_per_agent=NODES_PER_AGENT) as server, server.client(timeout=120) as client:
        client.add_pool("prpool", nodes=nodes, slots=1)
        began = time.perf_counter()
        with suite.step(f"waiting for {nodes:,} idle nodes ({nodes // NODES_PER_AGENT or 1} agents)"):
            client.wait_nodes_idle("prpool", nodes, timeout=suite.budget(240, 60))
        notes.append(f"{nodes:,} nodes idle after {time.perf_counter() - began:.0f}s")
        client.add_job("prjob", "prpool",
                       jobPreparationTask={"commandLine": "/bin/true"},
                       jobReleaseTask={"commandLine": "/bin/true"})
        sleep = suite.budget(20, 5)
        for body in collection_bodies(nodes, command=f"/bin/sleep {sleep}"):
            client.add_collection("prjob", body)
        deadline = Deadline(suite.budget(180, 45))
        with suite.step(f"{nodes:,} tasks (one per node) with preparation", total=nodes) as step:
            def all_done() -> bool:
                done = client.task_counts("prjob")["completed"]
                step.update(done)
                return done >= nodes

            finished = wait_until(all_done, deadline.left(), interval=0.5)
        notes.append(f"tasks done after {deadline.elapsed():.0f}s" if finished
                     else "tasks not all done in time")
        client.ok(client.post("/jobs/prjob/terminate", {"terminateReason": "bench"}))
        with suite.step("job terminated: release tasks on every node"):
            wait_until(lambda: client.ok(client.get("/jobs/prjob", {"$select": "state"})).json()["state"]
                       == "completed", suite.budget(120, 30), interval=0.5)
        pages: list[float] = []
        entries = released = 0
        with suite.step("listing preparation and release status", total=REPEAT) as step:
            for _ in range(REPEAT):
                times, entries, released = _list(client)
                pages += times
                step.advance()
    notes.append(f"{entries:,} entries, {released:,} with release completed, {len(pages)} pages timed")
    partial = entries < nodes
    return [Row(TITLE, f"page of 1,000 on {nodes:,} nodes, p50", percentile(pages, 50), "ms", at_most(100),
                CLIENT_NAME, "; ".join(notes) + f"; max {max(pages):.1f} ms", partial=partial)]
