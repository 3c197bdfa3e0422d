"""Certificate use cases (the deprecated Certificate operations; the rules: domain/certificates.py)."""

from __future__ import annotations

from ..domain import certificates as rules
from ..domain.certificates import CertificateAddParameter, CertificateState
from ..domain.errors import BatchError
from ..domain.states import with_state
from ..store.engine import Connection
from ..store.records import CERTIFICATES, Record
from .context import ListQuery, Page, ServiceContext, id_key, page_of


class CertificateService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def add(self, account: str, param: CertificateAddParameter) -> Record:
        public = rules.public_data(param)
        now = self.ctx.now()
        with self.ctx.store.write() as conn:
            if CERTIFICATES.get(conn, (account,), (rules.key(param.thumbprintAlgorithm, param.thumbprint),)):
                raise BatchError("CertificateExists", "The specified certificate already exists.",
                                 [("Thumbprint", param.thumbprint)])
            return CERTIFICATES.insert(conn, (account,), rules.new_body(param, public, now), now)

    def get(self, account: str, algorithm: str, thumbprint: str) -> Record:
        with self.ctx.store.read() as conn:
            return _require(conn, account, algorithm, thumbprint)

    def list(self, account: str, query: ListQuery) -> Page:
        with self.ctx.store.read() as conn:
            records = CERTIFICATES.page(conn, (account,), query.filter, query.after, query.limit + 1)
        return page_of(records, query.limit, id_key)

    def delete(self, account: str, algorithm: str, thumbprint: str) -> None:
        """No pool or node uses a certificate here: it goes at once (``deleting`` is never seen)."""
        with self.ctx.store.write() as conn:
            record = _require(conn, account, algorithm, thumbprint, for_update=True)
            if record.body["state"] == CertificateState.DELETING:
                raise BatchError("CertificateBeingDeleted", "The specified certificate is being deleted.")
            CERTIFICATES.delete(conn, record.pk)

    def cancel_deletion(self, account: str, algorithm: str, thumbprint: str) -> Record:
        with self.ctx.store.write() as conn:
            record = _require(conn, account, algorithm, thumbprint, for_update=True)
            rules.check_cancel_deletion(record.body["state"])
            now = self.ctx.now()
            body = {k: v for k, v in record.body.items() if k != "deleteCertificateError"}
            return CERTIFICATES.update(conn, record, with_state(body, CertificateState.ACTIVE, now), now)


def _require(conn: Connection, account: str, algorithm: str, thumbprint: str, *, for_update: bool = False) -> Record:
    record = CERTIFICATES.get(conn, (account,), (rules.key(algorithm, thumbprint),), for_update=for_update)
    if record is None:
        raise rules.not_found(algorithm, thumbprint)
    return record
