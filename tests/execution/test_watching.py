"""What operators watch, on a live server with real nodes: /health, /ready and /metrics scraped as
Prometheus would, while tasks run through the official SDK (both stores)."""

from __future__ import annotations

import httpx
from azure.batch import BatchClient, models as m
from prometheus_client.parser import text_string_to_metric_families

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import add_tasks, drop_pool, make_job, make_pool, task
from tests.support.live import LiveServer


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics: (name, labels) -> value."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_health_and_ready_answer_without_a_key(live_nodes: LiveServer) -> None:
    health = httpx.get(f"{live_nodes.url}/health", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = httpx.get(f"{live_nodes.url}/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "store": "ok", "leader": "this server"}
    # everything else still wants the account's key
    assert httpx.get(f"{live_nodes.url}/jobs", params={"api-version": "2024-07-01.20.0"}).status_code == 403


def test_metrics_follow_tasks_nodes_and_requests(live_nodes: LiveServer, batch: BatchClient) -> None:
    before = scrape(live_nodes.url)
    pool_id = make_pool(batch, nodes=2, slots=2)
    try:
        job_id = make_job(batch, pool_id)
        add_tasks(batch, job_id, *[task(f"ok{i}", "exit 0") for i in range(3)], task("bad", "exit 3"),
                  task("slow", "sleep 30"))
        wait_for(lambda: batch.get_job_task_counts(job_id).task_counts.completed == 4, message="4 tasks completed")
        wait_for(lambda: batch.get_task(job_id, "slow").state == "running", message="the slow task running")
        after = scrape(live_nodes.url)
        account = live_nodes.account
        assert value(after, "openbatch_tasks", account=account, pool=pool_id, state="running") == 1
        assert value(after, "openbatch_tasks", account=account, pool=pool_id, state="completed") == 4
        assert value(after, "openbatch_tasks", account=account, pool=pool_id, state="active") == 0
        assert value(after, "openbatch_tasks_completed", account=account, pool=pool_id, result="failed") == 1
        assert value(after, "openbatch_tasks_completed", account=account, pool=pool_id, result="succeeded") == 3
        nodes = {labels: number for (name, labels), number in after.items()
                 if name == "openbatch_nodes" and ("pool", pool_id) in labels}
        assert sum(nodes.values()) == 2
        assert value(after, "openbatch_nodes", account=account, pool=pool_id, state="running", dedicated="true") == 1
        assert value(after, "openbatch_pool_target_nodes", account=account, pool=pool_id, dedicated="true") == 2
        assert value(after, "openbatch_pool_slots", account=account, pool=pool_id, kind="used") == 1
        assert value(after, "openbatch_pool_slots", account=account, pool=pool_id, kind="total") == 4

        # this process's counters moved by (at least) what this test did: the other store's server counts too
        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("openbatch_task_transitions_total", from_state="none", to_state="active") >= 5
        assert moved("openbatch_task_transitions_total", from_state="running", to_state="completed") >= 4
        assert moved("openbatch_task_wait_seconds_count") >= 5
        assert moved("openbatch_task_runtime_seconds_count") >= 4
        assert moved("openbatch_api_requests_total", operation="Pool_Add", status="201") >= 1
        assert moved("openbatch_api_requests_total", operation="Task_AddCollection", status="200") >= 1
        assert moved("openbatch_api_request_duration_seconds_count", operation="Task_AddCollection") >= 1
        assert moved("openbatch_scheduler_placed_tasks_total") >= 5
        assert moved("openbatch_scheduler_rounds_total") >= 1
        assert value(after, "process_resident_memory_bytes") > 0
        # no id that grows without bound is a label
        for name, labels in after:
            assert not {key for key, _ in labels} & {"task", "job", "node", "task_id", "job_id", "node_id"}, name
    finally:
        drop_pool(batch, pool_id)


def test_an_autoscale_evaluation_is_counted(live_nodes: LiveServer, batch: BatchClient) -> None:
    before = scrape(live_nodes.url)
    pool_id = "metrics-autoscale-" + live_nodes.store_name
    batch.create_pool(m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2s_v3", enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 0;",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="22_04-lts"),
            node_agent_sku_id="batch.node.ubuntu 22.04")))
    try:
        after = scrape(live_nodes.url)
        ok = value(after, "openbatch_autoscale_evaluations_total", result="ok") - \
            value(before, "openbatch_autoscale_evaluations_total", result="ok")
        assert ok >= 1
        assert value(after, "openbatch_pools", account=live_nodes.account, state="active",
                     allocation_state="steady") >= 1
    finally:
        drop_pool(batch, pool_id)
