"""From a list request's query ($filter, $skiptoken, maxresults) to a :class:`ListQuery`."""

from __future__ import annotations

from ..odata import FILTERS, parse_filter
from ..services.context import ListQuery
from ..store.filter_columns import FILTER_COLUMNS
from ..store.filters import compile_filter
from .request import ApiRequest
from .wire import decode_token


def list_query(req: ApiRequest, operation_id: str, *, max_results: int = 1000) -> ListQuery:
    limit = req.int_query("maxresults", max_results, 1, max_results)
    token = req.query.get("$skiptoken")
    after = decode_token(token, req) if token else None
    text = req.query.get("$filter", "")
    where = None
    if text.strip():
        bound = parse_filter(text, FILTERS[operation_id])
        where = compile_filter(bound, FILTER_COLUMNS[operation_id])
    return ListQuery(where=where, after=after, limit=limit)
