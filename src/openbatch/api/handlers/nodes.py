"""Compute node reads."""

from __future__ import annotations

from starlette.responses import Response

from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import entity, listing, represent


@operation("ComputeNode_List")
async def list_nodes(req: ApiRequest) -> Response:
    pool_id = req.params["poolId"]
    page = await run(req.services.nodes.list, req.account, pool_id, list_query(req, "ComputeNode_List"))
    return listing(
        req, "nodes", (represent(r, req.url("pools", pool_id, "nodes", r.body["id"])) for r in page.records),
        page.next_after,
    )


@operation("ComputeNode_Get")
async def get(req: ApiRequest) -> Response:
    pool_id, node_id = req.params["poolId"], req.params["nodeId"]
    record = await run(req.services.nodes.get, req.account, pool_id, node_id)
    return entity(req, "nodes/@Element", represent(record, req.url("pools", pool_id, "nodes", record.body["id"])))
