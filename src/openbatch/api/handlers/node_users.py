"""ComputeNode AddUser, UpdateUser, DeleteUser."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response

from ...domain import clock
from ...domain.models import ComputeNodeUser, NodeUpdateUserParameter
from ..request import ApiRequest, run
from ..router import operation
from ..wire import empty


def _headers(req: ApiRequest, name: str, when: datetime) -> dict[str, str]:
    url = req.url("pools", req.params["poolId"], "nodes", req.params["nodeId"], "users", name)
    return {"DataServiceId": url, "ETag": clock.new_etag(), "Last-Modified": clock.to_http(when)}


@operation("ComputeNode_AddUser")
async def add_user(req: ApiRequest) -> Response:
    user = req.json(ComputeNodeUser)
    when = await run(req.services.node_users.add, req.account, req.params["poolId"], req.params["nodeId"], user)
    return empty(req, 201, _headers(req, user.name, when))


@operation("ComputeNode_UpdateUser")
async def update_user(req: ApiRequest) -> Response:
    update = req.json(NodeUpdateUserParameter)
    name = req.params["userName"]
    when = await run(req.services.node_users.update, req.account, req.params["poolId"], req.params["nodeId"],
                     name, update)
    return empty(req, 200, _headers(req, name, when))


@operation("ComputeNode_DeleteUser")
async def delete_user(req: ApiRequest) -> Response:
    await run(req.services.node_users.delete, req.account, req.params["poolId"], req.params["nodeId"],
              req.params["userName"])
    return empty(req, 200)
