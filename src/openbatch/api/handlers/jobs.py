"""Job operations, including the two seeds: task counts and preparation/release status."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...domain import clock, stats
from ...domain.secrets import JOB_SECRETS, redacted
from ...domain.models import (
    JobAddParameter,
    JobDisableParameter,
    JobPatchParameter,
    JobTerminateParameter,
    JobUpdateParameter,
)
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import changed, check_expand, created, entity, json_response, listing, represent

Json = dict[str, Any]


def _job_url(req: ApiRequest, job_id: str) -> str:
    return req.url("jobs", job_id)


def render_job(req: ApiRequest, record: Record, with_stats: bool) -> Json:
    url = _job_url(req, record.body["id"])
    extra = None
    if with_stats:
        extra = {
            "stats": stats.job_stats(
                url, record.body["creationTime"], clock.to_wire(clock.utcnow()),
                int(record.row["task_succeeded"]), int(record.row["task_failed"]),
            )
        }
    return redacted(represent(record, url, extra), JOB_SECRETS)


@operation("Job_Add")
async def add(req: ApiRequest) -> Response:
    record = await run(req.services.jobs.add, req.account, req.json(JobAddParameter))
    return created(req, _job_url(req, record.body["id"]), record)


@operation("Job_List")
async def list_jobs(req: ApiRequest) -> Response:
    expand = check_expand(req)
    page = await run(req.services.jobs.list, req.account, list_query(req, "Job_List"))
    return listing(req, "jobs", (render_job(req, r, expand) for r in page.records), page.next_after)


@operation("Job_Get")
async def get(req: ApiRequest) -> Response:
    expand = check_expand(req)
    record = await run(req.services.jobs.get, req.account, req.params["jobId"], req.conditions())
    return entity(req, "jobs/@Element", render_job(req, record, expand), record)


@operation("Job_Patch")
async def patch(req: ApiRequest) -> Response:
    body = req.json(JobPatchParameter)
    record = await run(req.services.jobs.patch, req.account, req.params["jobId"], body, req.conditions())
    return changed(req, 200, _job_url(req, record.body["id"]), record)


@operation("Job_Update")
async def update(req: ApiRequest) -> Response:
    body = req.json(JobUpdateParameter)
    record = await run(req.services.jobs.update, req.account, req.params["jobId"], body, req.conditions())
    return changed(req, 200, _job_url(req, record.body["id"]), record)


@operation("Job_Delete")
async def delete(req: ApiRequest) -> Response:
    req.bool_query("force")
    await run(req.services.jobs.delete, req.account, req.params["jobId"], req.conditions())
    return changed(req, 202, _job_url(req, req.params["jobId"]))


@operation("Job_Disable")
async def disable(req: ApiRequest) -> Response:
    body = req.json(JobDisableParameter)
    record = await run(req.services.jobs.disable, req.account, req.params["jobId"], body, req.conditions())
    return changed(req, 202, _job_url(req, record.body["id"]), record)


@operation("Job_Enable")
async def enable(req: ApiRequest) -> Response:
    record = await run(req.services.jobs.enable, req.account, req.params["jobId"], req.conditions())
    return changed(req, 202, _job_url(req, record.body["id"]), record)


@operation("Job_Terminate")
async def terminate(req: ApiRequest) -> Response:
    req.bool_query("force")
    body = req.optional_json(JobTerminateParameter)
    record = await run(req.services.jobs.terminate, req.account, req.params["jobId"], body, req.conditions())
    return changed(req, 202, _job_url(req, record.body["id"]), record)


@operation("Job_GetTaskCounts")
async def task_counts(req: ApiRequest) -> Response:
    result = await run(req.services.jobs.task_counts, req.account, req.params["jobId"])
    return json_response(req, {"odata.metadata": f"{req.base_url}/$metadata#taskcounts/@Element", **result})


def _prep_release_entry(req: ApiRequest, body: Json) -> Json:
    node_url = req.url("pools", body["poolId"], "nodes", body["nodeId"])
    entry: Json = {"poolId": body["poolId"], "nodeId": body["nodeId"], "nodeUrl": node_url}
    for key in ("jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"):
        info = body.get(key)
        if info is not None:
            info = dict(info)
            if "taskRootDirectory" in info:
                info["taskRootDirectoryUrl"] = f"{node_url}/files/{info['taskRootDirectory']}"
            entry[key] = info
    return entry


@operation("Job_ListPreparationAndReleaseTaskStatus")
async def preparation_and_release_status(req: ApiRequest) -> Response:
    query = list_query(req, "Job_ListPreparationAndReleaseTaskStatus")
    page = await run(req.services.prep_release.list, req.account, req.params["jobId"], query)
    return listing(
        req,
        "jobpreparationandreleasetaskstatuslist",
        (_prep_release_entry(req, r.body) for r in page.records),
        page.next_after,
    )
