"""Pool operations."""

from __future__ import annotations

from starlette.responses import Response

from ...domain import clock, stats, usage_metrics as usage_metrics_rules
from ...domain.pools import public_body, update_properties_model
from ...domain.models import (
    PoolEnableAutoScaleParameter,
    PreemptNodesParameter,
    PoolEvaluateAutoScaleParameter,
    NodeRemoveParameter,
    PoolAddParameter,
    PoolPatchParameter,
    PoolResizeParameter,
)
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import changed, check_expand, created, entity, json_response, listing, represent, resource_headers


def _pool_url(req: ApiRequest, record: Record) -> str:
    return req.url("pools", record.body["id"])


def _render(req: ApiRequest, record: Record, with_stats: bool) -> dict:
    url = _pool_url(req, record)
    extra = None
    if with_stats:
        extra = {"stats": stats.pool_stats(url + "/stats", record.body["creationTime"], clock.to_wire(clock.utcnow()))}
    return public_body(represent(record, url, extra), req.api_version)


@operation("Pool_Add")
async def add(req: ApiRequest) -> Response:
    record = await run(req.services.pools.add, req.account, req.json(PoolAddParameter))
    return created(req, _pool_url(req, record), record)


@operation("Pool_List")
async def list_pools(req: ApiRequest) -> Response:
    expand = check_expand(req)
    page = await run(req.services.pools.list, req.account, list_query(req, "Pool_List"))
    return listing(req, "pools", (_render(req, r, expand) for r in page.records), page.next_after)


@operation("Pool_Get")
async def get(req: ApiRequest) -> Response:
    expand = check_expand(req)
    record = await run(req.services.pools.get, req.account, req.params["poolId"], req.conditions())
    return entity(req, "pools/@Element", _render(req, record, expand), record)


@operation("Pool_Exists")
async def exists(req: ApiRequest) -> Response:
    record = await run(req.services.pools.get, req.account, req.params["poolId"], req.conditions())
    return json_response(req, None, 200, resource_headers(record))


@operation("Pool_Delete")
async def delete(req: ApiRequest) -> Response:
    await run(req.services.pools.delete, req.account, req.params["poolId"], req.conditions())
    return changed(req, 202, req.url("pools", req.params["poolId"]))


@operation("Pool_Patch")
async def patch(req: ApiRequest) -> Response:
    body = req.json(PoolPatchParameter)
    record = await run(req.services.pools.patch, req.account, req.params["poolId"], body, req.conditions())
    return changed(req, 200, _pool_url(req, record), record)


@operation("Pool_UpdateProperties")
async def update_properties(req: ApiRequest) -> Response:
    body = req.json(update_properties_model(req.api_version))
    record = await run(req.services.pools.update_properties, req.account, req.params["poolId"], body)
    return changed(req, 204, _pool_url(req, record), record)


@operation("Pool_Resize")
async def resize(req: ApiRequest) -> Response:
    body = req.json(PoolResizeParameter)
    record = await run(req.services.pools.resize, req.account, req.params["poolId"], body, req.conditions())
    return changed(req, 202, _pool_url(req, record), record)


@operation("Pool_EnableAutoScale")
async def enable_autoscale(req: ApiRequest) -> Response:
    body = req.json(PoolEnableAutoScaleParameter)
    record = await run(req.services.autoscale.enable, req.account, req.params["poolId"], body)
    return changed(req, 200, _pool_url(req, record), record)


@operation("Pool_DisableAutoScale")
async def disable_autoscale(req: ApiRequest) -> Response:
    record = await run(req.services.autoscale.disable, req.account, req.params["poolId"])
    return changed(req, 200, _pool_url(req, record), record)


@operation("Pool_EvaluateAutoScale")
async def evaluate_autoscale(req: ApiRequest) -> Response:
    body = req.json(PoolEvaluateAutoScaleParameter)
    result = await run(req.services.autoscale.evaluate, req.account, req.params["poolId"], body.autoScaleFormula)
    url = req.url("pools", req.params["poolId"])
    return json_response(req, {"odata.metadata": f"{req.base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities"
                                                 f".AutoScaleRun", **result}, 200, {"DataServiceId": url})


@operation("Pool_ListUsageMetrics")
async def usage_metrics(req: ApiRequest) -> Response:
    start, end = req.time_query("starttime"), req.time_query("endtime")
    page = await run(req.services.pools.usage_metrics, req.account, start, end,
                     list_query(req, "Pool_ListUsageMetrics"))
    entries = (usage_metrics_rules.entry(r.body, float(r.row["core_seconds"])) for r in page.records)
    return listing(req, "poolusagemetrics", entries, page.next_after)


@operation("Openbatch_PreemptNodes")
async def preempt_nodes(req: ApiRequest) -> Response:
    """Preempt low-priority nodes now, as Azure takes spot VMs back (openbatch's own operation)."""
    body = req.optional_json(PreemptNodesParameter)
    node_ids = (body.nodeList if body else None) or []
    preempted = await run(req.services.preemption.preempt, req.account, req.params["poolId"], node_ids)
    return json_response(req, {"preempted": preempted}, 200)


@operation("Pool_StopResize")
async def stop_resize(req: ApiRequest) -> Response:
    record = await run(req.services.pools.stop_resize, req.account, req.params["poolId"], req.conditions())
    return changed(req, 202, _pool_url(req, record), record)


@operation("Pool_RemoveNodes")
async def remove_nodes(req: ApiRequest) -> Response:
    body = req.json(NodeRemoveParameter)
    record = await run(req.services.pools.remove_nodes, req.account, req.params["poolId"], body, req.conditions())
    return changed(req, 202, _pool_url(req, record), record)
