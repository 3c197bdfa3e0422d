"""What the servers sharing one database tell each other through it (cluster/): commands for agents,
file answers, agents' last calls, and PostgreSQL notifications.

A notification sent in a transaction (``pg_notify``) is delivered when it commits, never if it rolls
back: a command and the wake-up that announces it are one. Channels are in :data:`CHANNELS`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .loop_reads import LoopReads
from .prepared import Prepared
from .schema import agent_commands as _c, agents as _a, file_answers as _f

#: Notification channels: payload an agent id (its commands / it is gone), a file request id, or nothing.
AGENT_COMMANDS = "openbatch_agent"
AGENT_GONE = "openbatch_agent_gone"
#: (the payload of AGENT_GONE after the id when the agent was retired: its last nodes left their pool)
RETIRED = "retired"
FILE_ANSWER = "openbatch_file_answer"
WAKE = "openbatch_wake"
NODES_CHANGED = "openbatch_nodes"
CHANNELS = (AGENT_COMMANDS, AGENT_GONE, FILE_ANSWER, WAKE, NODES_CHANGED)

_NOTIFY = Prepared(sa.text("SELECT pg_notify(:channel, :payload)"))


def notify(conn: Connection, channel: str, payload: str = "") -> None:
    """Tell every server listening on ``channel``, once the transaction commits (PostgreSQL). Sent with
    the transaction's other writes (prepared.defer_writes): nothing waits for its answer."""
    _NOTIFY.write(conn, {"channel": channel, "payload": payload})


#: The commands, in order, and their announcement: one statement, sent with the transaction's other writes.
_ENQUEUE = Prepared(sa.text(
    "WITH queued AS (INSERT INTO agent_commands (agent_id, body) "
    "SELECT :agent_id, body FROM unnest(CAST(:bodies AS text[])) WITH ORDINALITY AS b(body, n) ORDER BY n) "
    "SELECT pg_notify(:channel, :agent_id)"
))
_TAKE = Prepared(_c.delete().where(_c.c.agent_id == sa.bindparam("agent_id")).returning(_c.c.pk, _c.c.body))


def enqueue_commands(conn: Connection, agent_id: str, bodies: Sequence[str]) -> None:
    """Queue encoded commands for an agent and announce them, in the caller's transaction."""
    _ENQUEUE.write(conn, {"agent_id": agent_id, "bodies": list(bodies), "channel": AGENT_COMMANDS})


def take_commands(conn: Connection, agent_id: str) -> list[str]:
    """An agent's queued commands, oldest first; each is taken once, by one caller."""
    return [body for _, body in sorted(_TAKE.rows(conn, {"agent_id": agent_id}))]


async def take_commands_on_loop(reads: LoopReads, agent_id: str) -> list[str]:
    """:func:`take_commands` as one statement of its own on the event loop (atomic by itself)."""
    return [body for _, body in sorted(await reads.rows(_TAKE, {"agent_id": agent_id}, lane="takes"))]


def queued_commands(conn: Connection, agent_id: str) -> list[str]:
    """An agent's queued commands, not taken."""
    return list(conn.execute(sa.select(_c.c.body).where(_c.c.agent_id == agent_id).order_by(_c.c.pk)).scalars())


def drop_commands(conn: Connection, agent_id: str) -> None:
    conn.execute(_c.delete().where(_c.c.agent_id == agent_id))


def put_file_answer(conn: Connection, request_id: str, body: str, now: datetime) -> None:
    conn.execute(_f.delete().where(_f.c.request_id == request_id))
    conn.execute(_f.insert().values(request_id=request_id, body=body, created=now.replace(tzinfo=None)))
    notify(conn, FILE_ANSWER, request_id)


def take_file_answer(conn: Connection, request_id: str) -> str | None:
    return conn.execute(_f.delete().where(_f.c.request_id == request_id).returning(_f.c.body)).scalar()


def drop_file_answers_before(conn: Connection, before: datetime) -> None:
    """Answers nobody took (their asker stopped waiting, or died)."""
    conn.execute(_f.delete().where(_f.c.created < before.replace(tzinfo=None)))


def mark_seen(conn: Connection, agent_ids: Sequence[str], now: datetime) -> None:
    conn.execute(_a.update().where(_a.c.id.in_(list(agent_ids))).values(seen_at=now.replace(tzinfo=None)))


def record_usage(conn: Connection, usage: Mapping[str, Mapping[str, float]]) -> None:
    """Each agent's latest host usage (JSON), for the autoscale samples."""
    statement = _a.update().where(_a.c.id == sa.bindparam("b_id")).values(usage=sa.bindparam("b_usage"))
    conn.execute(statement, [{"b_id": agent_id, "b_usage": json.dumps(dict(values))}
                             for agent_id, values in sorted(usage.items())])


def agents_silent_since(conn: Connection, cutoff: datetime) -> list[tuple[str, datetime]]:
    """(agent id, when it last called or registered) of the agents silent since ``cutoff``."""
    naive = cutoff.replace(tzinfo=None)
    seen = sa.func.coalesce(_a.c.seen_at, _a.c.registered)
    return [(agent, last) for agent, last in conn.execute(sa.select(_a.c.id, seen).where(seen < naive)
                                                          .order_by(_a.c.id))]
