"""Job Manager tasks and task authentication tokens, end to end on real local nodes (azure-batch 15.1).

The classic pattern: a job manager that adds its job's tasks through the SDK with the token in
AZ_BATCH_AUTHENTICATION_TOKEN, waits for them and exits; the job then completes (JMComplete).
"""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

import httpx
from azure.batch import BatchClient, models as m

from tests.execution.conftest import wait_for
from tests.execution.test_task_lifecycle import drop_pool, make_pool
from tests.sdk.conftest import API_VERSION, uid
from tests.support.live import LiveServer

#: What a job manager runs: the official SDK with the task's token (over http, azure-core refuses its own
#: bearer policy, so the header is set by a one-line policy; over https BearerTokenCredentialPolicy works).
MANAGER = textwrap.dedent('''
    import os, sys, time
    from azure.batch import BatchClient, models as m
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    token = os.environ["AZ_BATCH_AUTHENTICATION_TOKEN"]
    job_id = os.environ["AZ_BATCH_JOB_ID"]

    class Bearer(SansIOHTTPPolicy):
        def on_request(self, request):
            request.http_request.headers["Authorization"] = "Bearer " + token

    batch = BatchClient(os.environ["AZ_BATCH_ACCOUNT_URL"], AzureNamedKeyCredential("unused", "dW51c2Vk"),
                        authentication_policy=Bearer())
    batch.create_task_collection(job_id, m.BatchTaskGroup(task_values=[
        m.BatchTaskCreateOptions(id=f"work-{i}", command_line=f"/bin/sh -c 'echo {i}'") for i in range(3)]))
    while any(t.state != "completed" for t in batch.list_tasks(job_id, filter="startswith(id,'work-')")):
        time.sleep(0.1)
    try:
        list(batch.list_pools())
        print("pools: allowed")
    except HttpResponseError as error:
        print("pools:", error.status_code)
    print("done", batch.get_job_task_counts(job_id).task_counts.succeeded)
''')


def manager_job(pool_id: str, script: Path, **manager: object) -> m.BatchJobCreateOptions:
    job_id = uid("jm")
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id),
                                   job_manager_task=m.BatchJobManagerTask(
                                       id="manager", command_line=f"{sys.executable} {shlex.quote(str(script))}",
                                       **{"user_identity": ADMIN, **manager}))


#: The test's own interpreter (and its SDK) may be where only root may pass (pyenv under /root).
ADMIN = m.UserIdentity(auto_user=m.AutoUserSpecification(scope="pool", elevation_level="admin"))


def add_with_token(live: LiveServer, job: m.BatchJobCreateOptions) -> None:
    """Job Add through REST (azure-batch 15's BatchJobManagerTask has no authenticationTokenSettings)."""
    body = job.as_dict()
    body["jobManagerTask"]["authenticationTokenSettings"] = {"access": ["job"]}
    from openbatch.auth.client import SharedKeyAuth

    with httpx.Client(base_url=live.url, auth=SharedKeyAuth(live.account, live.key)) as rest:
        response = rest.post("/jobs", params={"api-version": API_VERSION}, json=body)
        assert response.status_code == 201, response.text


def test_the_classic_job_manager(batch: BatchClient, live_nodes: LiveServer, tmp_path: Path) -> None:
    script = tmp_path / "manager.py"
    script.write_text(MANAGER)
    pool_id = make_pool(batch, nodes=2, slots=2)
    try:
        job = manager_job(pool_id, script)
        add_with_token(live_nodes, job)
        manager = batch.get_task(job.id, "manager")
        assert manager.required_slots == 2   # runExclusive (the default): all of its node's slots
        wait_for(lambda: batch.get_job(job.id).state == "completed", timeout=90, message="the job to complete")
        done = batch.get_job(job.id)
        assert done.execution_info.termination_reason == "JMComplete"
        assert done.job_manager_task.kill_job_on_completion and done.job_manager_task.run_exclusive
        manager = batch.get_task(job.id, "manager")
        assert manager.execution_info.result == "success", manager.execution_info.failure_info
        out = b"".join(batch.download_task_file(job.id, "manager", "stdout.txt")).decode()
        assert "pools: 403" in out and "done 3" in out, out
        work = [t for t in batch.list_tasks(job.id) if t.id.startswith("work-")]
        assert len(work) == 3 and all(t.execution_info.result == "success" for t in work)
        # nothing shared the job manager's node while it ran
        assert all(t.node_info.node_id != manager.node_info.node_id for t in work)
        counts = batch.get_job_task_counts(job.id).task_counts
        assert (counts.completed, counts.succeeded) == (4, 4)   # the job manager is counted as a task
    finally:
        drop_pool(batch, pool_id)


def test_a_job_manager_that_does_not_end_its_job(batch: BatchClient, tmp_path: Path) -> None:
    script = tmp_path / "quick.py"
    script.write_text("print('managed')\n")
    pool_id = make_pool(batch, nodes=1, slots=1)
    try:
        job = manager_job(pool_id, script, kill_job_on_completion=False, run_exclusive=False)
        batch.create_job(job)
        wait_for(lambda: batch.get_task(job.id, "manager").state == "completed", message="the manager to end")
        assert batch.get_job(job.id).state == "active"
        assert batch.get_task(job.id, "manager").required_slots == 1
    finally:
        drop_pool(batch, pool_id)


def test_tokens_are_scoped_to_their_job(batch: BatchClient, live_nodes: LiveServer) -> None:
    from openbatch.auth import task_tokens

    mine, other = uid("mine"), uid("other")
    for job_id in (mine, other):
        batch.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    key = live_nodes.app.accounts[live_nodes.account]
    token = task_tokens.issue(live_nodes.account, key, mine, live_nodes.app.now())
    q = {"api-version": API_VERSION}
    with httpx.Client(base_url=live_nodes.url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(f"/jobs/{mine}", params=q).status_code == 200
        assert client.post(f"/jobs/{mine}/tasks", params=q, json={"id": "t", "commandLine": "x"}).status_code == 201
        assert client.get(f"/jobs/{mine}/taskcounts", params=q).status_code == 200
        for path in (f"/jobs/{other}", "/pools", "/jobs"):
            response = client.get(path, params=q)
            assert response.status_code == 403 and response.json()["code"] == "InsufficientAccountPermissions"
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = client.get(f"/jobs/{mine}", params=q, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 403 and response.json()["code"] == "AuthenticationFailed"
