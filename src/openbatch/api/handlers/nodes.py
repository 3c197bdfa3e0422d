"""Compute node reads."""

from __future__ import annotations

from starlette.responses import Response

from ...domain import nodes as node_rules
from ...store.records import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import entity, listing


def _render(req: ApiRequest, pool_id: str, record: Record) -> dict:
    """ComputeNode has no eTag/lastModified; its counters live in columns."""
    return {**node_rules.render(record.body, record.row), "url": req.url("pools", pool_id, "nodes", record.body["id"])}


@operation("ComputeNode_List")
async def list_nodes(req: ApiRequest) -> Response:
    pool_id = req.params["poolId"]
    page = await run(req.services.nodes.list, req.account, pool_id, list_query(req, "ComputeNode_List"))
    return listing(req, "nodes", (_render(req, pool_id, r) for r in page.records), page.next_after)


@operation("ComputeNode_Get")
async def get(req: ApiRequest) -> Response:
    pool_id, node_id = req.params["poolId"], req.params["nodeId"]
    record = await run(req.services.nodes.get, req.account, pool_id, node_id)
    return entity(req, "nodes/@Element", _render(req, pool_id, record))
