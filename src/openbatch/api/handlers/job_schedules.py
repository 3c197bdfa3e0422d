"""Job schedule operations, and the jobs a schedule created."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...domain.models import JobScheduleAddParameter, JobSchedulePatchParameter, JobScheduleUpdateParameter
from ...domain.secrets import JOB_SCHEDULE_SECRETS, redacted
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import changed, check_expand, created, entity, json_response, listing, represent, resource_headers
from .jobs import render_job

Json = dict[str, Any]


def _url(req: ApiRequest, schedule_id: str) -> str:
    return req.url("jobschedules", schedule_id)


def _with_job_url(req: ApiRequest, body: Json) -> Json:
    recent = body.get("executionInfo", {}).get("recentJob")
    if recent is None:
        return body
    info = {**body["executionInfo"], "recentJob": {**recent, "url": req.url("jobs", recent["id"])}}
    return {**body, "executionInfo": info}


async def _render(req: ApiRequest, record: Record, with_stats: bool) -> Json:
    url = _url(req, record.body["id"])
    extra = {"stats": await run(req.services.job_schedules.stats, record, url)} if with_stats else None
    return _with_job_url(req, redacted(represent(record, url, extra), JOB_SCHEDULE_SECRETS))


@operation("JobSchedule_Add")
async def add(req: ApiRequest) -> Response:
    record = await run(req.services.job_schedules.add, req.account, req.json(JobScheduleAddParameter))
    return created(req, _url(req, record.body["id"]), record)


@operation("JobSchedule_List")
async def list_schedules(req: ApiRequest) -> Response:
    expand = check_expand(req)
    page = await run(req.services.job_schedules.list, req.account, list_query(req, "JobSchedule_List"))
    return listing(req, "jobschedules", [await _render(req, r, expand) for r in page.records], page.next_after)


@operation("JobSchedule_Get")
async def get(req: ApiRequest) -> Response:
    expand = check_expand(req)
    record = await run(req.services.job_schedules.get, req.account, req.params["jobScheduleId"], req.conditions())
    return entity(req, "jobschedules/@Element", await _render(req, record, expand), record)


@operation("JobSchedule_Exists")
async def exists(req: ApiRequest) -> Response:
    record = await run(req.services.job_schedules.get, req.account, req.params["jobScheduleId"], req.conditions())
    return json_response(req, None, 200, resource_headers(record))


@operation("JobSchedule_Patch")
async def patch(req: ApiRequest) -> Response:
    body = req.json(JobSchedulePatchParameter)
    record = await run(req.services.job_schedules.patch, req.account, req.params["jobScheduleId"], body,
                       req.conditions())
    return changed(req, 200, _url(req, record.body["id"]), record)


@operation("JobSchedule_Update")
async def update(req: ApiRequest) -> Response:
    body = req.json(JobScheduleUpdateParameter)
    record = await run(req.services.job_schedules.update, req.account, req.params["jobScheduleId"], body,
                       req.conditions())
    return changed(req, 200, _url(req, record.body["id"]), record)


@operation("JobSchedule_Disable")
async def disable(req: ApiRequest) -> Response:
    record = await run(req.services.job_schedules.disable, req.account, req.params["jobScheduleId"], req.conditions())
    return changed(req, 204, _url(req, record.body["id"]), record)


@operation("JobSchedule_Enable")
async def enable(req: ApiRequest) -> Response:
    record = await run(req.services.job_schedules.enable, req.account, req.params["jobScheduleId"], req.conditions())
    return changed(req, 204, _url(req, record.body["id"]), record)


@operation("JobSchedule_Terminate")
async def terminate(req: ApiRequest) -> Response:
    req.bool_query("force")
    record = await run(req.services.job_schedules.terminate, req.account, req.params["jobScheduleId"],
                       req.conditions())
    return changed(req, 202, _url(req, record.body["id"]), record)


@operation("JobSchedule_Delete")
async def delete(req: ApiRequest) -> Response:
    req.bool_query("force")
    await run(req.services.job_schedules.delete, req.account, req.params["jobScheduleId"], req.conditions())
    return changed(req, 202, _url(req, req.params["jobScheduleId"]))


@operation("Job_ListFromJobSchedule")
async def list_jobs(req: ApiRequest) -> Response:
    expand = check_expand(req)
    page = await run(req.services.job_schedules.jobs_of, req.account, req.params["jobScheduleId"],
                     list_query(req, "Job_ListFromJobSchedule"))
    return listing(req, "jobs", (render_job(req, r, expand) for r in page.records), page.next_after)
