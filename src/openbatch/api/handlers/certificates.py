"""Certificate operations (deprecated by Azure, still called by clients)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ...domain.certificates import CertificateAddParameter
from ...services import Record
from ..listing import list_query
from ..request import ApiRequest, run
from ..router import operation
from ..wire import changed, created, entity, listing

Json = dict[str, Any]


def _url(req: ApiRequest, body: Json) -> str:
    return (f"{req.base_url}/certificates(thumbprintAlgorithm={body['thumbprintAlgorithm']},"
            f"thumbprint={body['thumbprint']})")


def _render(req: ApiRequest, record: Record) -> Json:
    return {**record.body, "url": _url(req, record.body)}


def _ids(req: ApiRequest) -> tuple[str, str]:
    return req.params["thumbprintAlgorithm"], req.params["thumbprint"]


@operation("Certificate_Add")
async def add(req: ApiRequest) -> Response:
    record = await run(req.services.certificates.add, req.account, req.json(CertificateAddParameter))
    return created(req, _url(req, record.body), record)


@operation("Certificate_List")
async def list_certificates(req: ApiRequest) -> Response:
    page = await run(req.services.certificates.list, req.account, list_query(req, "Certificate_List"))
    return listing(req, "certificates", (_render(req, r) for r in page.records), page.next_after)


@operation("Certificate_Get")
async def get(req: ApiRequest) -> Response:
    record = await run(req.services.certificates.get, req.account, *_ids(req))
    return entity(req, "certificates/@Element", _render(req, record), record)


@operation("Certificate_Delete")
async def delete(req: ApiRequest) -> Response:
    await run(req.services.certificates.delete, req.account, *_ids(req))
    return changed(req, 202, f"{req.base_url}/certificates")


@operation("Certificate_CancelDeletion")
async def cancel_deletion(req: ApiRequest) -> Response:
    record = await run(req.services.certificates.cancel_deletion, req.account, *_ids(req))
    return changed(req, 204, _url(req, record.body), record)
