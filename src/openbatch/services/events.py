"""Job and pool events for the log (info), written once the transaction that made them committed."""

from __future__ import annotations

import logging
from typing import Any

from ..store.engine import Connection, after_commit

jobs_log = logging.getLogger("openbatch.jobs")
pools_log = logging.getLogger("openbatch.pools")


def job(conn: Connection, job_id: str, message: str, *args: Any) -> None:
    """``message`` about job ``job_id`` (``job <id>: `` goes before it)."""
    after_commit(conn, lambda: jobs_log.info("job %s: " + message, job_id, *args, extra={"job": job_id}))


def pool(conn: Connection, pool_id: str, message: str, *args: Any) -> None:
    """``message`` about pool ``pool_id`` (``pool <id>: `` goes before it)."""
    after_commit(conn, lambda: pools_log.info("pool %s: " + message, pool_id, *args, extra={"pool": pool_id}))
