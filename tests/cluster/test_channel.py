"""Several servers' messages through one PostgreSQL database (cluster/channel.py, cluster/listener.py,
cluster/leader.py): commands written in a transaction reach the agent's server only if it commits, each
is taken once and in order, a notification wakes a listener, one leader at a time."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import pytest

from openbatch.cluster.channel import DatabaseOutbox
from openbatch.cluster.leader import Leadership
from openbatch.cluster.listener import Listener
from openbatch.protocol import KillCommand, RunCommand
from openbatch.store import cluster_queries as queries
from openbatch.store.engine import Store
from openbatch.store.lease import Holder

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(postgres_store: Store) -> Store:
    return postgres_store


def outbox(store: Store, leading: bool = False) -> tuple[DatabaseOutbox, list[str]]:
    calls: list[str] = []
    box = DatabaseOutbox(store, lambda: leading, lambda: calls.append("wake"), lambda: calls.append("nodes"),
                         lambda agent, retired: calls.append(f"gone {agent}"))
    return box, calls


def take(box: DatabaseOutbox, agent_id: str) -> list:
    """What a long-poll takes (on an event loop of its own, closed after)."""
    async def taking() -> list:
        try:
            return await box.take_on_loop(agent_id)
        finally:
            assert box.store.loop_reads is not None
            await box.store.loop_reads.close()
    return asyncio.run(taking())


def run(agent_id: str, run_id: str) -> RunCommand:
    return RunCommand(id=run_id, kind="task", nodeId="n1", commandLine="true", taskDir="j/t")


def test_commands_are_sent_only_by_a_committed_transaction_and_taken_once_in_order(store: Store) -> None:
    box, _ = outbox(store)
    with store.write() as conn:
        box.send_in(conn, "a1", [run("a1", "t1"), KillCommand(id="t0")])
        box.send_in(conn, "a1", [run("a1", "t2")])
        box.send_in(conn, "a2", [KillCommand(id="x")])
        assert box.queued_runs(conn, "a1") == {"t1", "t2"}
    with pytest.raises(RuntimeError), store.write() as conn:
        box.send_in(conn, "a1", [run("a1", "lost")])
        raise RuntimeError("rolled back")
    assert [c.id for c in take(box, "a1")] == ["t1", "t0", "t2"]
    assert take(box, "a1") == []
    with store.write() as conn:
        box.agent_gone_in(conn, "a2")   # its commands go with it
    assert take(box, "a2") == []


def test_a_notification_reaches_a_listener_after_the_commit(store: Store) -> None:
    heard: list[tuple[str, str | None]] = []
    got = threading.Event()

    def handler(channel: str):  # type: ignore[no-untyped-def]
        def on(payload: str | None) -> None:
            heard.append((channel, payload))
            if payload:
                got.set()
        return on

    listener = Listener(store.url, {name: handler(name) for name in queries.CHANNELS})
    listener.start()
    try:
        assert listener.wait_connected(10)
        assert sorted(heard) == sorted((name, None) for name in queries.CHANNELS)   # caught up at connect
        box, _ = outbox(store)
        with store.write() as conn:
            box.send_in(conn, "a9", [KillCommand(id="k")])
            assert not got.wait(0.2)     # not before the commit
        assert got.wait(5)
        assert heard[-1] == (queries.AGENT_COMMANDS, "a9")
    finally:
        listener.stop()


def test_wake_ups_are_local_on_the_leader_and_notified_elsewhere(store: Store) -> None:
    leader, calls = outbox(store, leading=True)
    with store.write() as conn:
        leader.wake_in(conn)
        leader.nodes_changed_in(conn)
        assert calls == []
    assert calls == ["wake", "nodes"]
    follower, calls = outbox(store, leading=False)
    with store.write() as conn:
        follower.wake_in(conn)
    assert calls == []   # (went to the leader as a notification)


def test_a_file_answer_is_kept_for_the_server_that_asked(store: Store) -> None:
    box, _ = outbox(store)
    box.put_answer("req1", {"ok": [1, 2]}, NOW)
    box.put_answer("old", {"ok": 0}, NOW - timedelta(hours=1))
    box.put_answer("req2", {"ok": 3}, NOW)   # drops answers nobody took for long
    assert box.take_answer("req1") == {"ok": [1, 2]}
    assert box.take_answer("req1") is None
    assert box.take_answer("old") is None


def test_one_leader_at_a_time_and_the_next_one_when_it_goes(store: Store) -> None:
    async def main() -> None:
        elected: list[str] = []

        def leadership(name: str) -> Leadership:
            async def on_elected() -> None:
                elected.append(name)

            async def on_lost() -> None:
                elected.append(f"{name} lost")

            return Leadership(store.url, Holder(url=name), on_elected, on_lost)

        first, second = leadership("first"), leadership("second")
        await first.start()
        await second.start()
        await asyncio.sleep(1.2)
        assert elected == ["first"] and first.leading and not second.leading
        await first.stop_asking()
        await first.release()
        for _ in range(50):
            if second.leading:
                break
            await asyncio.sleep(0.1)
        assert elected == ["first", "second"]
        await second.stop_asking()
        await second.release()

    asyncio.run(main())


def test_a_reports_answer_takes_the_queue_first_so_a_kill_never_overtakes_its_run(store: Store) -> None:
    from openbatch.services.context import ServiceContext

    box, _ = outbox(store)
    ctx = ServiceContext(store=store, outbox=box)
    with store.write() as conn:
        ctx.send(conn, "a1", [run("a1", "x")])            # decided first, not yet taken
    with store.write() as conn, ctx.answering(conn, "a1") as answer:
        ctx.send(conn, "a1", [KillCommand(id="x")])     # the report's own decision
        ctx.send(conn, "a2", [KillCommand(id="other")])
    assert [(type(c).__name__, c.id) for c in answer] == [("RunCommand", "x"), ("KillCommand", "x")]
    assert take(box, "a1") == []
    assert [c.id for c in take(box, "a2")] == ["other"]


def test_a_leader_that_loses_its_lock_connection_steps_down_and_asks_again(store: Store) -> None:
    import psycopg

    async def main() -> None:
        events: list[str] = []

        async def on_elected() -> None:
            events.append("elected")

        async def on_lost() -> None:
            events.append("lost")

        leader = Leadership(store.url, Holder(url="only"), on_elected, on_lost)
        await leader.start()
        assert events == ["elected"]
        assert leader._conn is not None
        pid = leader._conn.info.backend_pid
        with psycopg.connect(leader.dsn, autocommit=True) as admin:   # the database drops the session
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(50):
            if events[-2:] == ["lost", "elected"]:
                break
            await asyncio.sleep(0.1)
        assert events == ["elected", "lost", "elected"] and leader.leading
        await leader.stop_asking()
        await leader.release()

    asyncio.run(main())
