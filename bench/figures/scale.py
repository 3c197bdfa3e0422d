"""Figure 5, scale: the server's RSS and Task List pages on the million-task job.

Three pages are fetched in turns, several times, and their medians reported: the first
page (1,000 tasks), the first page of ``$filter=state eq 'completed'``, and the last page
reached by following ``odata.nextLink`` through the whole list (the walk uses
``$select=id`` to keep it short; the last link is then fetched without ``$select``, i.e.
the same query as the first page, which the keyset token allows since it is bound to the
list path).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .. import bigjob
from ..measure import Deadline, percentile, time_calls
from ..results import Row, at_most
from ..server import CLIENT_NAME, Client
from ..suite import Suite

KEY = "scale"
TITLE = "5 scale"
NEEDS = ("bigjob",)
REPEAT = 7
GIB = 1024**3
#: Timing noise allowed when comparing the last page with the first.
NOISE = 1.2
FILTER = "state eq 'completed'"


def _without_select(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "$select"]
    return urlunsplit(parts._replace(query=urlencode(query, safe="$,")))


def _page(client: Client, url: str | None, path: str, params: dict[str, str] | None = None) -> int:
    response = client.ok(client.get_url(url) if url else client.get(path, params))
    return len(response.json()["value"])


def _walk(suite: Suite, client: Client, path: str, pages: int,
          budget: float) -> tuple[str | None, list[float], int]:
    """Follow nextLinks from the first page: (link of the last page, per-page ms, pages read)."""
    deadline = Deadline(budget)
    times: list[float] = []
    url: str | None = None
    last_link: str | None = None
    with suite.step("walking the list by nextLink ($select=id)", total=pages) as step:
        for _ in range(pages + 10):
            began = time.perf_counter()
            response = client.ok(client.get_url(url) if url else client.get(path, {"$select": "id"}))
            times.append((time.perf_counter() - began) * 1000)
            step.advance()
            link = response.json().get("odata.nextLink")
            if not link or deadline.passed():
                break
            last_link = url = link
    return last_link, times, len(times)


def run(suite: Suite) -> list[Row]:
    big = bigjob.get(suite)
    server = big.server
    path = f"/jobs/{big.job_id}/tasks"
    rss = [server.rss()]
    pages = (big.tasks + 999) // 1000
    with server.client() as client:
        last_link, walk, read = _walk(suite, client, path, pages, suite.budget(150, 40))
        rss.append(server.rss())
        link = _without_select(last_link) if last_link else None
        # The three pages in turns, so that they meet the same noise (the machine may be shared).
        first: list[float] = []
        completed: list[float] = []
        last: list[float] = []
        with suite.step("first, filtered and last page, in turns", total=REPEAT) as step:
            for _ in range(REPEAT):
                first += time_calls(lambda: _page(client, None, path), 1, 30)
                completed += time_calls(lambda: _page(client, None, path, {"$filter": FILTER}), 1, 30)
                if link:
                    last += time_calls(lambda: _page(client, link, path), 1, 30)
                step.advance()
        rss.append(server.rss())
    partial = read < pages
    first_p50, last_p50 = percentile(first, 50), percentile(last, 50)
    ratio = last_p50 / first_p50 if last and first_p50 else None
    head, tail = walk[: min(20, len(walk))], walk[-min(20, len(walk)):]
    walk_note = (f"walk: {read:,}/{pages:,} pages in {sum(walk) / 1000:.1f}s; $select=id pages p50 "
                 f"{percentile(head, 50):.1f} ms first 20, {percentile(tail, 50):.1f} ms last 20")
    reached = "last page" if not partial else f"page {read:,} (walk stopped by its time budget)"
    return [
        Row(TITLE, f"server RSS with {big.tasks:,} tasks", max(rss) / GIB * 1024, "MiB", at_most(1024), "",
            f"sampled {len(rss)} times during figure 5 (server process only, agents excluded)"),
        Row(TITLE, "Task List first page (1,000), p50", first_p50, "ms", at_most(50), CLIENT_NAME,
            f"max {max(first):.1f} ms of {len(first)}"),
        Row(TITLE, f"Task List $filter={FILTER}, p50", percentile(completed, 50), "ms", at_most(50),
            CLIENT_NAME, f"max {max(completed):.1f} ms of {len(completed)}"),
        Row(TITLE, f"Task List {reached} by nextLink, p50", last_p50 if last else None, "ms", at_most(50),
            CLIENT_NAME, walk_note, partial=partial),
        Row(TITLE, "last page / first page", ratio, "x", at_most(NOISE), CLIENT_NAME,
            f"keyset paging should give 1.0; {NOISE} allows for timing noise", partial=partial),
    ]
