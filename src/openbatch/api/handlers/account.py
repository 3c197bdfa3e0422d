"""Account and application operations."""

from __future__ import annotations

from starlette.responses import Response

from ...domain.errors import invalid_query
from ...domain.states import JobState
from ...odata import FILTERS, matches, parse_filter
from ...services.overview import as_json
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import decode_token, json_response, listing


JOB_STATES = frozenset(state.value for state in JobState)


@operation("Openbatch_Overview")
async def overview(req: ApiRequest) -> Response:
    """The account at a glance: pools with their nodes by state, slots and targets; jobs and tasks by state
    (openbatch's own operation: ``openbatch status`` and the dashboard read it)."""
    summary = await run(req.services.overview.overview, req.account)
    return json_response(req, as_json(summary), 200)


@operation("Openbatch_JobProgress")
async def job_progress(req: ApiRequest) -> Response:
    """The account's newest jobs (``maxresults``, up to 1000; ``state``: one job state, or every state)
    with their task counts, in one read (openbatch's own operation: the dashboard's jobs view)."""
    limit = req.int_query("maxresults", 100, 1, 1000)
    state = req.query.get("state")
    if state is not None and state not in JOB_STATES:
        raise invalid_query("state", state, f"A job state is one of {', '.join(sorted(JOB_STATES))}.")
    jobs = await run(req.services.overview.job_progress, req.account, limit, (state,) if state else None)
    return json_response(req, {"value": jobs}, 200)


@operation("Account_ListPoolNodeCounts")
async def pool_node_counts(req: ApiRequest) -> Response:
    query = list_query(req, "Account_ListPoolNodeCounts", max_results=10)
    counts, position = await run(req.services.account.pool_node_counts, req.account, query)
    return listing(req, "poolnodecounts", counts, position)


@operation("Account_ListSupportedImages")
async def supported_images(req: ApiRequest) -> Response:
    limit = req.int_query("maxresults", 1000, 1, 1000)
    text = req.query.get("$filter", "")
    images = req.services.account.supported_images()
    if text.strip():
        bound = parse_filter(text, FILTERS["Account_ListSupportedImages"])
        images = [i for i in images if matches(bound, lambda p, i=i: i.get(p))]
    token = req.query.get("$skiptoken")
    if token:  # the nodeAgentSKUId of the last image of the previous page (unique, in a fixed order)
        last = decode_token(token, req)[0]
        skus = [i["nodeAgentSKUId"] for i in images]
        images = images[skus.index(last) + 1:] if last in skus else []
    page, rest = images[:limit], images[limit:]
    return listing(req, "supportedimages", page, (page[-1]["nodeAgentSKUId"],) if rest else None)


@operation("Application_List")
async def applications(req: ApiRequest) -> Response:
    req.int_query("maxresults", 1000, 1, 1000)
    return listing(req, "applications", req.services.account.applications(), None)


@operation("Application_Get")
async def application(req: ApiRequest) -> Response:
    return await run(req.services.account.application, req.params["applicationId"])
