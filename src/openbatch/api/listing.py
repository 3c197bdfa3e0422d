"""From a list request's query ($filter, $skiptoken, maxresults) to a :class:`ListQuery`."""

from __future__ import annotations

from ..odata import FILTERS, parse_filter
from ..services.context import ListQuery
from .request import ApiRequest
from .wire import decode_token


def list_query(req: ApiRequest, operation_id: str, *, max_results: int = 1000) -> ListQuery:
    limit = req.int_query("maxresults", max_results, 1, max_results)
    token = req.query.get("$skiptoken")
    after = decode_token(token, req) if token else None
    text = req.query.get("$filter", "")
    bound = parse_filter(text, FILTERS[operation_id]) if text.strip() else None
    return ListQuery(filter=bound, after=after, limit=limit)
