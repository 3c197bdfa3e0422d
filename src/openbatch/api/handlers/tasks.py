"""Task operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from starlette.responses import Response

from ...domain import clock, stats
from ...domain.secrets import TASK_SECRETS, redacted
from ...domain.errors import BatchError, invalid_body
from ...domain.models import TaskAddCollectionParameter, TaskAddParameter, TaskCollection, TaskUpdateParameter
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run, segment
from ..router import operation
from ..wire import changed, check_expand, created, empty, entity, json_response, listing, represent

Json = dict[str, Any]

MAX_COLLECTION_BYTES = 1024 * 1024


def _task_url(req: ApiRequest, job_id: str, task_id: str) -> str:
    return req.url("jobs", job_id, "tasks", task_id)


def _render(req: ApiRequest, job_id: str, record: Record, with_stats: bool) -> Json:
    return _Renderer(req, job_id, with_stats)(record)


class _Renderer:
    """CloudTask bodies of one job as the API shows them; URL prefixes are built once per response."""

    def __init__(self, req: ApiRequest, job_id: str, with_stats: bool, *, owned: bool = False) -> None:
        self.req = req
        self.tasks_url = req.url("jobs", job_id, "tasks")
        self.with_stats = with_stats
        self.owned = owned  # the records are this response's alone (see wire.represent)
        self.node_urls: dict[tuple[str, str], str] = {}

    def __call__(self, record: Record) -> Json:
        url = f"{self.tasks_url}/{segment(record.body['id'])}"
        extra: Json = {}
        node_info = record.body.get("nodeInfo")
        if node_info:
            node = (node_info["poolId"], node_info["nodeId"])
            node_url = self.node_urls.get(node)
            if node_url is None:
                node_url = self.node_urls[node] = self.req.url("pools", node[0], "nodes", node[1])
            extra["nodeInfo"] = {**node_info, "nodeUrl": node_url}
            if "taskRootDirectory" in node_info:
                extra["nodeInfo"]["taskRootDirectoryUrl"] = f"{node_url}/files/{node_info['taskRootDirectory']}"
        if self.with_stats:
            extra["stats"] = stats.task_stats(url, record.body["creationTime"], clock.to_wire(clock.utcnow()))
        body = represent(record, url, extra, owned=self.owned)
        return redacted(body, TASK_SECRETS) if "containerSettings" in body else body


@operation("Task_Add")
async def add(req: ApiRequest) -> Response:
    job_id = req.params["jobId"]
    record = await run(req.services.tasks.add, req.account, job_id, req.json(TaskAddParameter))
    return created(req, _task_url(req, job_id, record.body["id"]), record)


@operation("Task_AddCollection")
async def add_collection(req: ApiRequest) -> Response:
    if len(req.body) > MAX_COLLECTION_BYTES:
        raise BatchError("RequestBodyTooLarge", "The task collection is larger than 1 MB.",
                         [("MaxLimit", str(MAX_COLLECTION_BYTES))])
    job_id = req.params["jobId"]
    outcomes = await run(req.services.tasks.add_collection, req.account, job_id, _collection_items(req))
    location = req.url("jobs", job_id, "tasks") + "/"
    stamps: dict[datetime, str] = {}  # the tasks of one call share their lastModified
    results = []
    for outcome in outcomes:
        if outcome.error is not None:
            error = outcome.error
            status = "servererror" if error.status >= 500 else "clienterror"
            results.append({"status": status, "taskId": outcome.task_id, "error": error.to_wire()})
        else:
            record = outcome.record
            stamp = stamps.get(record.last_modified)
            if stamp is None:
                stamp = stamps[record.last_modified] = clock.to_wire(record.last_modified)
            results.append({
                "status": "success",
                "taskId": outcome.task_id,
                "eTag": record.etag,
                "lastModified": stamp,
                "location": location + outcome.task_id,  # an added task's id is [A-Za-z0-9_-]: nothing to quote
            })
    return json_response(req, {"odata.metadata": f"{req.base_url}/$metadata#taskaddresult", "value": results})


def _collection_items(req: ApiRequest) -> Sequence[TaskAddParameter | Json]:
    """The body's tasks: all typed in one pass when every item is a well-formed task, else the raw
    items (each bad one then gets its own clienterror result)."""
    try:
        return req.json(TaskCollection).value
    except BatchError:
        pass
    collection = req.json(TaskAddCollectionParameter)
    if any(not isinstance(item, dict) for item in collection.value):
        raise invalid_body("Every item of value must be a task object.")
    return collection.value


@operation("Task_List")
async def list_tasks(req: ApiRequest) -> Response:
    expand = check_expand(req)
    job_id = req.params["jobId"]
    page = await run(req.services.tasks.list, req.account, job_id, list_query(req, "Task_List"))
    render = _Renderer(req, job_id, expand, owned=True)
    return listing(req, "tasks", map(render, page.records), page.next_after)


@operation("Task_Get")
async def get(req: ApiRequest) -> Response:
    expand = check_expand(req)
    job_id = req.params["jobId"]
    record = await run(req.services.tasks.get, req.account, job_id, req.params["taskId"],
                                  req.conditions())
    return entity(req, "tasks/@Element", _render(req, job_id, record, expand), record)


@operation("Task_Update")
async def update(req: ApiRequest) -> Response:
    job_id, task_id = req.params["jobId"], req.params["taskId"]
    body = req.json(TaskUpdateParameter) if req.body.strip() else TaskUpdateParameter()
    record = await run(req.services.tasks.update, req.account, job_id, task_id, body, req.conditions())
    return changed(req, 200, _task_url(req, job_id, record.body["id"]), record)


@operation("Task_Delete")
async def delete(req: ApiRequest) -> Response:
    job_id, task_id = req.params["jobId"], req.params["taskId"]
    await run(req.services.tasks.delete, req.account, job_id, task_id, req.conditions())
    return empty(req, 200)


@operation("Task_Terminate")
async def terminate(req: ApiRequest) -> Response:
    job_id, task_id = req.params["jobId"], req.params["taskId"]
    record = await run(req.services.tasks.terminate, req.account, job_id, task_id, req.conditions())
    return changed(req, 204, _task_url(req, job_id, record.body["id"]), record)


@operation("Task_Reactivate")
async def reactivate(req: ApiRequest) -> Response:
    job_id, task_id = req.params["jobId"], req.params["taskId"]
    record = await run(req.services.tasks.reactivate, req.account, job_id, task_id, req.conditions())
    return changed(req, 204, _task_url(req, job_id, record.body["id"]), record)


@operation("Task_ListSubtasks")
async def list_subtasks(req: ApiRequest) -> Response:
    subtasks = await run(req.services.tasks.list_subtasks, req.account, req.params["jobId"], req.params["taskId"])
    for subtask in subtasks:
        info = subtask["nodeInfo"]
        node_url = req.url("pools", info["poolId"], "nodes", info["nodeId"])
        subtask["nodeInfo"] = {**info, "nodeUrl": node_url,
                               "taskRootDirectoryUrl": f"{node_url}/files/{info['taskRootDirectory']}"}
    return json_response(req, {"odata.metadata": f"{req.base_url}/$metadata#subtaskinformation", "value": subtasks})


