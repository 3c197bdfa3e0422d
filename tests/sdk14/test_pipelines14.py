"""Auto pools, job managers, output files and task tokens through azure-batch 14.2 (msrest), where its
models differ from 15.x (JobManagerTask.authentication_token_settings, PoolInformation.auto_pool_specification)."""

from __future__ import annotations

import pytest
from azure.batch import BatchServiceClient
from azure.batch import models as m
from msrest.authentication import BasicTokenAuthentication

from openbatch.auth import task_tokens
from tests.sdk14.conftest import uid
from tests.sdk14.test_sdk14 import IMAGE, NODE_AGENT, batch_error
from tests.support.live import LiveServer


def test_a_job_with_an_auto_pool_and_a_job_manager(client: BatchServiceClient) -> None:
    job_id = uid("jm14")
    output = m.OutputFile(file_pattern="../std*.txt", destination=m.OutputFileDestination(
        container=m.OutputFileBlobContainerDestination(container_url="https://acct.blob.core.windows.net/logs?sig=x",
                                                       path="logs")),
        upload_options=m.OutputFileUploadOptions(upload_condition="taskcompletion"))
    spec = m.PoolSpecification(vm_size="standard_d2s_v3", target_dedicated_nodes=0, task_slots_per_node=3,
                               virtual_machine_configuration=m.VirtualMachineConfiguration(
                                   image_reference=IMAGE, node_agent_sku_id=NODE_AGENT))
    client.job.add(m.JobAddParameter(
        id=job_id,
        pool_info=m.PoolInformation(auto_pool_specification=m.AutoPoolSpecification(
            auto_pool_id_prefix="p14", pool_lifetime_option="job", pool=spec)),
        job_manager_task=m.JobManagerTask(
            id="manager", command_line="/bin/true", output_files=[output],
            authentication_token_settings=m.AuthenticationTokenSettings(access=["job"]))))
    job = client.job.get(job_id)
    pool_id = job.execution_info.pool_id
    assert pool_id.startswith("p14_") and job.pool_info.auto_pool_specification.pool.task_slots_per_node == 3
    assert client.pool.get(pool_id).task_slots_per_node == 3
    manager = client.task.get(job_id, "manager")
    assert manager.required_slots == 3   # runExclusive: every slot of its node
    assert manager.output_files[0].file_pattern == "../std*.txt"
    assert manager.authentication_token_settings.access == ["job"]
    client.job.delete(job_id)
    batch_error(lambda: client.pool.get(pool_id), 404, "PoolNotFound")


def test_a_task_token_through_basic_token_authentication(client: BatchServiceClient, live: LiveServer) -> None:
    job_id, other = uid("tok14"), uid("tok14")
    for name in (job_id, other):
        client.job.add(m.JobAddParameter(id=name, pool_info=m.PoolInformation(pool_id="nowhere")))
    token = task_tokens.issue(live.account, live.app.accounts[live.account], job_id, live.app.now())
    with_token = BatchServiceClient(BasicTokenAuthentication({"access_token": token}), batch_url=live.url)
    with_token.task.add(job_id, m.TaskAddParameter(id="from-manager", command_line="/bin/true"))
    assert with_token.job.get_task_counts(job_id).task_counts.active == 1
    batch_error(lambda: with_token.job.get(other), 403, "InsufficientAccountPermissions")
    with pytest.raises(m.BatchErrorException):
        list(with_token.pool.list())
