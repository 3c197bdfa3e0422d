"""The dashboard in a real headless browser (Debian's Chromium driven by Playwright) against a live server
with real nodes, on both stores: every view renders real data, live updates arrive without a reload,
actions work, a read-only session cannot act, one account never sees another's. Screenshots of each
view go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from azure.batch import BatchClient, models as m
from azure.core.credentials import AzureNamedKeyCredential

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import add_tasks, drop_pool, make_job, make_pool, task
from tests.sdk.conftest import uid
from tests.support.live import DASHBOARD_TOKEN, OTHER_ACCOUNT, OTHER_KEY, LiveServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (scripts/test.sh installs it)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """(For this module only: while Playwright's synchronous API is open, the main thread has an event loop
    running, and other tests' asyncio.run would fail.)"""
    if CHROMIUM is None:
        pytest.skip("no Chromium to test the dashboard in (scripts/test.sh installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, live_nodes: LiveServer) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_nodes.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        yield opened
    finally:
        context.close()
    # (a failed fetch the test provoked logs a console error: only script errors fail the test)
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def shot(page, name: str, store: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{store}.png"), full_page=True)


def sign_in(page, server: LiveServer, *, token: str | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto("/ui/")
    if token is not None:
        page.get_by_text("Sign in with a read-only dashboard token").click()
    page.get_by_label("Account", exact=True).fill(server.account)
    page.locator("input[name=secret]").fill(token if token is not None else server.key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("sign out").wait_for()


def test_sign_in_wants_the_key_and_the_overview_goes_live(page, live_nodes: LiveServer,  # type: ignore[no-untyped-def]
                                                          batch: BatchClient) -> None:
    page.goto("/ui/")
    page.get_by_label("Account", exact=True).fill(live_nodes.account)
    page.locator("input[name=secret]").fill("d3Jvbmc=")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="not right").wait_for()
    assert "openbatch_session" not in {c["name"] for c in page.context.cookies()}

    pool_id = make_pool(batch, nodes=2, slots=2)
    try:
        sign_in(page, live_nodes)
        cookie = next(c for c in page.context.cookies() if c["name"] == "openbatch_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and live_nodes.key not in cookie["value"]
        row = page.locator("tr", has=page.get_by_role("link", name=pool_id, exact=True))
        row.wait_for()
        assert "0 / 4" in row.inner_text()
        job_id = make_job(batch, pool_id)
        add_tasks(batch, job_id, *[task(f"t{i}", "sleep 1") for i in range(8)])
        # live: the page follows the tasks without a reload
        page.wait_for_function("() => /[1-9][0-9.]* tasks\\/s completed/.test(document.body.innerText)")
        wait_for(lambda: "4 / 4" in row.inner_text() or "completed" in row.inner_text())
        shot(page, "overview", live_nodes.store_name)
        wait_for(lambda: "8 completed" in row.inner_text(), timeout=30, message="8 completed, live")
    finally:
        drop_pool(batch, pool_id)


def test_a_pool_shows_its_nodes_as_a_heat_map_and_resizes(page, live_nodes: LiveServer,  # type: ignore[no-untyped-def]
                                                            batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=2, slots=1)
    try:
        job_id = make_job(batch, pool_id)
        add_tasks(batch, job_id, task("long", "sleep 30"))
        sign_in(page, live_nodes)
        page.goto(f"/ui/#/pools/{pool_id}")
        tiles = page.locator("[data-testid=heatmap] a.tile")
        wait_for(lambda: tiles.count() == 2 and page.locator("a.tile.state-running").count() == 1,
                 message="two tiles, one running")
        shot(page, "pool", live_nodes.store_name)
        page.get_by_label("dedicated", exact=True).fill("3")
        page.get_by_role("button", name="Resize").click()
        wait_for(lambda: batch.get_pool(pool_id).target_dedicated_nodes == 3, message="the pool resized")
        wait_for(lambda: tiles.count() == 3, message="a third tile, live")
        # reboot the node that runs the task: the task goes back to the queue, the node comes back
        busy = batch.get_task(job_id, "long").node_info.node_id
        before = batch.get_node(pool_id, busy).last_boot_time
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("tr", has=page.get_by_role("link", name=busy)).get_by_role("button", name="Reboot").click()
        wait_for(lambda: batch.get_node(pool_id, busy).last_boot_time != before, message="the node rebooted")
        assert batch.get_task(job_id, "long").execution_info.requeue_count >= 1
    finally:
        drop_pool(batch, pool_id)


def test_a_job_pages_filters_and_draws_its_tasks(page, live_nodes: LiveServer,  # type: ignore[no-untyped-def]
                                                 batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=2, slots=4)
    try:
        job_id = make_job(batch, pool_id, job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"))
        add_tasks(batch, job_id, *[task(f"task-{i:03}", "exit 0") for i in range(100)])
        add_tasks(batch, job_id, *[task(f"task-{i:03}", "exit 0") for i in range(100, 130)], task("bad", "exit 7"))
        wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.completed == 131, timeout=60,
                 message="131 tasks completed")
        sign_in(page, live_nodes)
        page.goto("/ui/#/jobs")
        page.locator("tr", has=page.get_by_role("link", name=job_id, exact=True)).get_by_text("1 failed").wait_for()
        page.get_by_role("link", name=job_id, exact=True).click()
        page.get_by_text("130 succeeded").wait_for()
        rows = page.locator("table tbody tr")
        wait_for(lambda: rows.count() == 100, message="a page of 100 tasks")
        page.get_by_role("button", name="next ▶").click()
        wait_for(lambda: rows.count() == 31 and "page 2" in page.inner_text("main"), message="the second page")
        page.get_by_role("button", name="◀ previous").click()
        wait_for(lambda: rows.count() == 100)
        page.get_by_label("state").select_option("failed")
        wait_for(lambda: rows.count() == 1 and "bad" in rows.first.inner_text(), message="only the failed task")
        assert "7" in rows.first.inner_text()
        page.get_by_label("state").select_option("")
        page.get_by_placeholder("task id").fill("task-12")
        wait_for(lambda: rows.count() == 10, message="task-120 .. task-129")
        page.get_by_role("button", name="Preparation & release").click()
        wait_for(lambda: rows.count() == 2 and "succeeded" in page.inner_text("main"), message="prep on 2 nodes")
        page.get_by_role("button", name="Timeline").click()
        page.locator("[data-testid=timeline] rect").first.wait_for()
        assert page.locator("[data-testid=timeline] rect").count() == 131
        assert page.locator("[data-testid=timeline] rect.bar-failed").count() == 1
        shot(page, "job-timeline", live_nodes.store_name)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Terminate job").click()
        wait_for(lambda: batch.get_job(job_id).state == "completed", message="the job terminated")
        page.locator("h2 .badge", has_text="completed").wait_for()
        assert batch.get_job(job_id).execution_info.termination_reason == "dashboard"
    finally:
        drop_pool(batch, pool_id)


def test_a_task_tails_its_output_live_and_can_be_terminated(page, live_nodes: LiveServer,  # type: ignore[no-untyped-def]
                                                            batch: BatchClient) -> None:
    pool_id = make_pool(batch, nodes=1, slots=1)
    try:
        job_id = make_job(batch, pool_id)
        add_tasks(batch, job_id, task("talker", "for i in $(seq 1 300); do echo tick $i; sleep 0.2; done",
                                      environment_settings=[m.EnvironmentSetting(name="COLOUR", value="blue")]))
        wait_for(lambda: batch.get_task(job_id, "talker").state == "running", message="running")
        sign_in(page, live_nodes)
        page.goto(f"/ui/#/jobs/{job_id}/tasks/talker")
        out = page.locator("[data-testid='tail-stdout.txt']")
        out.get_by_text("tick 2").wait_for()
        first = max(int(n) for n in re.findall(r"tick (\d+)", out.inner_text()))
        page.wait_for_function(f"() => /tick {first + 5}\\b/.test(document.querySelector(\"[data-testid='tail-stdout.txt']\").innerText)")
        assert "COLOUR=blue" in page.inner_text("main")
        page.get_by_role("link", name="stdout.txt").first.wait_for()
        shot(page, "task", live_nodes.store_name)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Terminate task").click()
        wait_for(lambda: batch.get_task(job_id, "talker").state == "completed", message="terminated")
        page.locator("h2 .badge", has_text="completed").wait_for()
        node_id = batch.get_task(job_id, "talker").node_info.node_id
        page.goto(f"/ui/#/pools/{pool_id}/nodes/{node_id}")
        name = f"workitems/{job_id}/job-1/talker/stdout.txt"
        page.get_by_role("link", name=name, exact=True).click()
        page.locator(f"[data-testid='tail-{name}']").get_by_text("tick 3").wait_for()
        shot(page, "node", live_nodes.store_name)
    finally:
        drop_pool(batch, pool_id)


def test_a_viewer_reads_but_cannot_act_and_nobody_sees_another_account(page, live_nodes: LiveServer,  # type: ignore[no-untyped-def]
                                                                       batch: BatchClient) -> None:
    theirs = uid("theirs")
    other = BatchClient(endpoint=live_nodes.url, credential=AzureNamedKeyCredential(OTHER_ACCOUNT, OTHER_KEY))
    other.create_pool(m.BatchPoolCreateOptions(
        id=theirs, vm_size="standard_d2s_v3", target_dedicated_nodes=0,
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    mine = make_pool(batch, nodes=1, slots=1)
    try:
        sign_in(page, live_nodes, token=DASHBOARD_TOKEN)
        assert "(viewer)" in page.inner_text("header")
        page.goto("/ui/#/pools")
        page.get_by_role("link", name=mine, exact=True).wait_for()
        assert theirs not in page.inner_text("main")
        page.goto(f"/ui/#/pools/{mine}")
        page.locator("[data-testid=heatmap] a.tile").first.wait_for()
        assert page.get_by_role("button", name="Delete pool").count() == 0
        assert page.get_by_role("button", name="Reboot").count() == 0
        # the session itself may not act, whatever the page shows
        status = page.evaluate(f"""async () => (await fetch('/pools/{mine}?api-version=2024-07-01.20.0',
            {{method: 'DELETE', headers: {{'x-openbatch-dashboard': '1'}}}})).status""")
        assert status == 403
        # another account's pool is not found through this session
        status = page.evaluate(f"""async () => (await fetch('/pools/{theirs}?api-version=2024-07-01.20.0',
            {{headers: {{'x-openbatch-dashboard': '1'}}, cache: 'no-store'}})).status""")
        assert status == 404
        # without the dashboard's header the cookie is not enough (another site's page could send it)
        status = page.evaluate(f"""async () => (await fetch('/pools/{mine}?api-version=2024-07-01.20.0',
            {{cache: 'no-store'}})).status""")
        assert status == 403
    finally:
        drop_pool(batch, mine)
        other.begin_delete_pool(theirs, polling_interval=0)


def test_signing_in_needs_the_dashboard_header_and_the_feed_needs_a_session(live_nodes: LiveServer) -> None:
    refused = httpx.post(f"{live_nodes.url}/ui/session", json={"account": live_nodes.account, "key": live_nodes.key})
    assert refused.status_code == 403
    assert httpx.get(f"{live_nodes.url}/ui/events").status_code == 401
    assert httpx.get(f"{live_nodes.url}/ui/session").status_code == 401
    index = httpx.get(f"{live_nodes.url}/ui/")
    assert index.status_code == 200 and "app.js" in index.text
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    assert httpx.get(f"{live_nodes.url}/ui", follow_redirects=False).status_code == 308
    # nothing outside the dashboard's directory is served (the server's own code, say)
    assert httpx.get(f"{live_nodes.url}/ui/%2E%2E/api/app.py").status_code == 404
    assert httpx.get(f"{live_nodes.url}/ui/no-such-file.js").status_code == 404
    assert httpx.post(f"{live_nodes.url}/ui/app.js").status_code == 405
    assert httpx.get(f"{live_nodes.url}/ui/app.js").headers["content-type"].startswith("text/javascript")
