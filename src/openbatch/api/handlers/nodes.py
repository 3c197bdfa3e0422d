"""Compute node reads."""

from __future__ import annotations

from starlette.responses import Response

from ...domain import nodes as node_rules
from ...domain.secrets import NODE_SECRETS, redacted
from ...domain import clock
from ...domain.models import (
    NodeDisableSchedulingParameter,
    NodeDeallocateParameter,
    NodeRebootParameter,
    NodeReimageParameter,
    UploadBatchServiceLogsConfiguration,
)
from ...domain.output_files import check_service_logs_upload
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import changed, entity, json_response, listing


def _render(req: ApiRequest, pool_id: str, record: Record, recent: list[dict]) -> dict:
    """ComputeNode has no eTag/lastModified; its counters live in columns."""
    body = {**redacted(node_rules.render(record.body, record.row), NODE_SECRETS),
            "url": req.url("pools", pool_id, "nodes", record.body["id"])}
    if recent:
        body["recentTasks"] = [{**item, "taskUrl": req.url("jobs", item["jobId"], "tasks", item["taskId"])}
                               for item in recent]
    return body


@operation("ComputeNode_List")
async def list_nodes(req: ApiRequest) -> Response:
    pool_id = req.params["poolId"]
    page, recent = await run(req.services.nodes.list, req.account, pool_id, list_query(req, "ComputeNode_List"))
    return listing(req, "nodes", (_render(req, pool_id, r, recent.get(r.pk, [])) for r in page.records),
                   page.next_after)


@operation("ComputeNode_Get")
async def get(req: ApiRequest) -> Response:
    pool_id, node_id = req.params["poolId"], req.params["nodeId"]
    record, recent = await run(req.services.nodes.get_with_recent, req.account, pool_id, node_id)
    return entity(req, "nodes/@Element", _render(req, pool_id, record, recent))


@operation("ComputeNode_GetRemoteLoginSettings")
async def remote_login_settings(req: ApiRequest) -> Response:
    found = await run(req.services.nodes.remote_login, req.account, req.params["poolId"], req.params["nodeId"])
    return json_response(req, {"odata.metadata": f"{req.base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities."
                                                 f"ComputeNodeGetRemoteLoginSettingsResult", **found})


@operation("ComputeNode_GetRemoteDesktop")
async def remote_desktop(req: ApiRequest) -> Response:
    await run(req.services.nodes.remote_desktop, req.account, req.params["poolId"], req.params["nodeId"])
    raise AssertionError("remote_desktop always refuses")


@operation("ComputeNodeExtension_List")
async def list_extensions(req: ApiRequest) -> Response:
    found = await run(req.services.nodes.extensions, req.account, req.params["poolId"], req.params["nodeId"])
    return listing(req, "extensions", found, None)


@operation("ComputeNodeExtension_Get")
async def get_extension(req: ApiRequest) -> Response:
    found = await run(req.services.nodes.extension, req.account, req.params["poolId"], req.params["nodeId"],
                      req.params["extensionName"])
    return entity(req, "extensions/@Element", found)


def _node_url(req: ApiRequest) -> str:
    return req.url("pools", req.params["poolId"], "nodes", req.params["nodeId"])


@operation("ComputeNode_DisableScheduling")
async def disable_scheduling(req: ApiRequest) -> Response:
    body = req.optional_json(NodeDisableSchedulingParameter)
    option = (body.nodeDisableSchedulingOption if body else None) or "requeue"
    await run(req.services.node_ops.set_scheduling, req.account, req.params["poolId"], req.params["nodeId"], False, option)
    return changed(req, 200, _node_url(req))


@operation("ComputeNode_EnableScheduling")
async def enable_scheduling(req: ApiRequest) -> Response:
    await run(req.services.node_ops.set_scheduling, req.account, req.params["poolId"], req.params["nodeId"], True)
    return changed(req, 200, _node_url(req))


@operation("ComputeNode_Reboot")
async def reboot(req: ApiRequest) -> Response:
    body = req.optional_json(NodeRebootParameter)
    option = (body.nodeRebootOption if body else None) or "requeue"
    await run(lambda: req.services.node_ops.reboot(req.account, req.params["poolId"], req.params["nodeId"], option))
    return changed(req, 202, _node_url(req))


@operation("ComputeNode_Deallocate")
async def deallocate(req: ApiRequest) -> Response:
    body = req.optional_json(NodeDeallocateParameter)
    option = (body.nodeDeallocateOption if body else None) or "requeue"
    await run(req.services.node_ops.deallocate, req.account, req.params["poolId"], req.params["nodeId"], option)
    return changed(req, 202, _node_url(req))


@operation("ComputeNode_Start")
async def start(req: ApiRequest) -> Response:
    await run(req.services.node_ops.start, req.account, req.params["poolId"], req.params["nodeId"])
    return changed(req, 202, _node_url(req))


@operation("ComputeNode_Reimage")
async def reimage(req: ApiRequest) -> Response:
    body = req.optional_json(NodeReimageParameter)
    option = (body.nodeReimageOption if body else None) or "requeue"
    await run(lambda: req.services.node_ops.reboot(req.account, req.params["poolId"], req.params["nodeId"], option,
                                                   reimage=True))
    return changed(req, 202, _node_url(req))


@operation("ComputeNode_UploadBatchServiceLogs")
async def upload_batch_service_logs(req: ApiRequest) -> Response:
    config = req.json(UploadBatchServiceLogsConfiguration)
    check_service_logs_upload(config)
    start, end = clock.aware(config.startTime), clock.aware(config.endTime)
    result = await run(req.services.files.upload_service_logs, req.account, req.params["poolId"],
                       req.params["nodeId"], config.containerUrl, start.isoformat(),  # type: ignore[union-attr]
                       end.isoformat() if end else None)
    return json_response(req, result)
