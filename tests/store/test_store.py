"""The store against both real databases: migrations, records, keyset pages, counters, transactions."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openbatch.odata import FILTERS, parse_filter
from openbatch.store import schema
from openbatch.store.engine import Conflict, Duplicate, Store
from openbatch.store.records import JOBS, PREP_RELEASE, TASKS, adjust_counters, read_counters

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def job_body(job_id: str, state: str = "active") -> dict:
    return {"id": job_id, "state": state, "creationTime": "2026-05-01T12:00:00.000000Z",
            "stateTransitionTime": "2026-05-01T12:00:00.000000Z", "priority": 0, "poolInfo": {"poolId": "p"},
            "executionInfo": {"startTime": "2026-05-01T12:00:00.000000Z", "poolId": "p"}}


def task_body(task_id: str, state: str = "active", slots: int = 1, exit_code: int | None = None) -> dict:
    info: dict = {"retryCount": 0, "requeueCount": 0}
    if exit_code is not None:
        info.update(exitCode=exit_code, result="success" if exit_code == 0 else "failure")
    return {"id": task_id, "state": state, "requiredSlots": slots, "creationTime": "2026-05-01T12:00:00Z",
            "stateTransitionTime": "2026-05-01T12:00:00Z", "executionInfo": info}


def test_migrations_produce_exactly_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diffs == []


def test_migrate_is_idempotent(store: Store) -> None:
    store.migrate()
    with store.read() as conn:
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    from alembic.script import ScriptDirectory

    from openbatch.store.migrate import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()


def test_records_round_trip_case_insensitively(store: Store) -> None:
    with store.write() as conn:
        record = JOBS.insert(conn, ("acct",), job_body("MyJob"), NOW)
    with store.read() as conn:
        found = JOBS.get(conn, ("acct",), ("myjob",))
        assert JOBS.get(conn, ("other",), ("myjob",)) is None
    assert found is not None and found.pk == record.pk
    assert found.body["id"] == "MyJob" and found.etag == record.etag
    assert found.last_modified == NOW


def test_update_moves_etag_and_columns(store: Store) -> None:
    with store.write() as conn:
        record = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
        updated = JOBS.update(conn, record, job_body("j", "disabled"), NOW + timedelta(seconds=1))
    assert updated.etag != record.etag
    with store.read() as conn:
        row = conn.execute(sa.select(schema.jobs.c.state).where(schema.jobs.c.pk == record.pk)).scalar_one()
    assert row == "disabled"


def test_duplicate_ids_are_rejected_by_the_database(store: Store) -> None:
    with store.write() as conn:
        JOBS.insert(conn, ("acct",), job_body("dup"), NOW)
    with pytest.raises(Duplicate) as taken:
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("DUP"), NOW)
    assert taken.value.table == "jobs"
    with store.read() as conn:
        assert JOBS.get(conn, ("acct",), ("dup",)).body["id"] == "dup"


def test_a_duplicate_among_writers_alongside_each_other_is_a_conflict_to_run_again(store: Store) -> None:
    """(lock "shared", PostgreSQL: the key may be another writer's, committed since; SQLite has one writer)"""
    with store.write() as conn:
        JOBS.insert(conn, ("acct",), job_body("dup"), NOW)
    with pytest.raises(sa.exc.IntegrityError if store.is_sqlite else Conflict):
        with store.write(lock="shared") as conn:
            JOBS.insert(conn, ("acct",), job_body("DUP"), NOW)


def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("gone"), NOW)
            raise RuntimeError("bad input discovered late")
    with store.read() as conn:
        assert JOBS.get(conn, ("acct",), ("gone",)) is None


def test_keyset_pages_cover_everything_once(store: Store) -> None:
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("paged"), NOW)
        TASKS.insert_many(conn, (job.pk,), [task_body(f"t{i:04d}") for i in range(2_345)], NOW)
    seen: list[str] = []
    after = None
    with store.read() as conn:
        while True:
            page = TASKS.page(conn, (job.pk,), None, after, 1000)
            seen += [r.body["id"] for r in page]
            if len(page) < 1000:
                break
            after = (page[-1].row["id_key"],)
        filtered = TASKS.page(conn, (job.pk,), parse_filter("id ge 't2300'", FILTERS["Task_List"]), None, 1000)
    assert seen == [f"t{i:04d}" for i in range(2_345)]
    assert [r.body["id"] for r in filtered] == [f"t{i:04d}" for i in range(2_300, 2_345)]


def test_counters_move_in_the_same_transaction(store: Store) -> None:
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("counted"), NOW)
        adjust_counters(conn, job.pk, Counter({"task_active": 5, "slot_active": 9}))
        adjust_counters(conn, job.pk, Counter({"task_active": -1, "task_completed": 1, "task_succeeded": 1}))
    with store.read() as conn:
        counters = read_counters(conn, job.pk)
    assert counters["task_active"] == 4 and counters["slot_active"] == 9
    assert counters["task_completed"] == counters["task_succeeded"] == 1 and counters["task_failed"] == 0


def test_deleting_a_job_deletes_its_tasks_and_prep_release_rows(store: Store) -> None:
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("cascade"), NOW)
        TASKS.insert_many(conn, (job.pk,), [task_body("a"), task_body("b")], NOW)
        PREP_RELEASE.insert(conn, (job.pk,), {"poolId": "p", "nodeId": "n",
                                              "jobPreparationTaskExecutionInfo": {"state": "running"}}, NOW)
        JOBS.delete(conn, job.pk)
    with store.read() as conn:
        assert TASKS.count(conn, (job.pk,)) == 0
        assert PREP_RELEASE.count(conn, (job.pk,)) == 0


def test_projection_columns_follow_the_body(store: Store) -> None:
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("proj"), NOW)
        TASKS.insert(conn, (job.pk,), task_body("done", "completed", 3, exit_code=7), NOW)
    with store.read() as conn:
        row = conn.execute(sa.select(schema.tasks).where(schema.tasks.c.job_pk == job.pk)).one()._mapping
    assert (row["state"], row["exit_code"], row["result"], row["required_slots"]) == ("completed", 7, "failure", 3)


def test_concurrent_writers_queue_instead_of_failing(store: Store) -> None:
    """SQLite writers take the lock up front (BEGIN IMMEDIATE), PostgreSQL rows with FOR UPDATE."""
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("busy"), NOW)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                with store.write() as conn:
                    JOBS.get(conn, ("acct",), ("busy",), for_update=True)
                    TASKS.insert(conn, (job.pk,), task_body(f"w{n}-{i}"), NOW)
                    adjust_counters(conn, job.pk, Counter({"task_active": 1}))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as conn:
        assert read_counters(conn, job.pk)["task_active"] == 150 == TASKS.count(conn, (job.pk,))


def test_shared_writers_run_alongside_each_other_but_never_alongside_an_exclusive_one(store: Store) -> None:
    if store.is_sqlite:
        pytest.skip("SQLite has one writer whatever the lock mode")
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    # (a transaction takes its lock with its first statement sent: PostgreSQL sends BEGIN and the lock with it)
    def hold_shared() -> None:
        with store.write(lock="shared") as conn:
            TASKS.insert(conn, (job.pk,), task_body("held"), NOW)
            assert JOBS.get(conn, ("acct",), ("j",)) is not None
            holding.set()
            release.wait(10)
            order.append("shared writer ends")

    def exclusive() -> None:
        with store.write() as conn:
            assert JOBS.get(conn, ("acct",), ("j",)) is not None
            order.append("exclusive writer runs")
            adjust_counters(conn, job.pk, Counter({"task_active": 1}))

    holder = threading.Thread(target=hold_shared)
    holder.start()
    assert holding.wait(10)
    with store.write(lock="shared") as conn:     # a second shared writer does not wait for the first
        TASKS.insert(conn, (job.pk,), task_body("alongside"), NOW)
    waiting = threading.Thread(target=exclusive)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and order == []    # the exclusive one waits for the shared one
    release.set()
    holder.join()
    waiting.join(10)
    assert order == ["shared writer ends", "exclusive writer runs"]


def test_shared_writers_inserting_the_same_key_meet_as_a_conflict(store: Store) -> None:
    """The second insert waits for the first's commit, then fails as Conflict, having written nothing."""
    from openbatch.store.engine import Conflict

    if store.is_sqlite:
        pytest.skip("SQLite has one writer whatever the lock mode")
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def first() -> None:
        with store.write(lock="shared") as conn:
            TASKS.insert(conn, (job.pk,), task_body("same"), NOW)
            holding.set()
            release.wait(10)

    def second() -> None:
        try:
            with store.write(lock="shared") as conn:
                TASKS.insert(conn, (job.pk,), task_body("other"), NOW)
                TASKS.insert(conn, (job.pk,), task_body("SAME"), NOW)
        except BaseException as error:  # noqa: BLE001
            failures.append(error)

    holder = threading.Thread(target=first)
    holder.start()
    assert holding.wait(10)
    late = threading.Thread(target=second)
    late.start()
    late.join(0.3)
    assert late.is_alive()                  # blocked on the uncommitted key
    release.set()
    holder.join()
    late.join(10)
    assert [type(f) for f in failures] == [Conflict]
    with store.read() as conn:
        assert TASKS.get(conn, (job.pk,), ("other",)) is None
        assert TASKS.count(conn, (job.pk,)) == 1


def test_single_reads_see_every_commit_from_any_thread(store: Store) -> None:
    """read_statement (on SQLite a kept, per-thread autocommit connection) sees each commit at once."""
    from openbatch.store.records import counters_by_id

    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    seen: list[int] = []

    def read() -> None:
        with store.read_statement() as conn:
            row = counters_by_id(conn, "acct", "J")
        assert row is not None
        seen.append(row["task_active"])

    for _ in range(3):
        with store.write() as conn:
            adjust_counters(conn, job.pk, Counter({"task_active": 1}))
        read()
        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
    assert seen == [1, 1, 2, 2, 3, 3]
    with store.read_statement() as conn:
        assert counters_by_id(conn, "acct", "missing") is None


def test_many_threads_reading_one_statement_each_cannot_starve_pooled_reads(store: Store) -> None:
    """Threads that keep a reader connection for life (read_statement on SQLite) must not take them from
    the pool that read() and write() check out of: more threads than the pool holds, each still alive."""
    from openbatch.store.records import counters_by_id

    with store.write() as conn:
        JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    pool_room = store.engine.pool.size() + store.engine.pool._max_overflow  # type: ignore[attr-defined]
    done = threading.Event()
    read_once = threading.Barrier(pool_room + 5 + 1)
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            with store.read_statement() as conn:
                assert counters_by_id(conn, "acct", "j") is not None
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        read_once.wait()
        done.wait()   # the thread (and with it, its reader connection) lives on

    threads = [threading.Thread(target=reader) for _ in range(pool_room + 5)]
    for thread in threads:
        thread.start()
    try:
        read_once.wait(timeout=30)
        assert not failures
        store.engine.pool._timeout = 2  # type: ignore[attr-defined]  # fail fast instead of 30 s
        with store.read() as conn:
            assert TASKS.count(conn, (1,)) == 0
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("k"), NOW)
    finally:
        done.set()
        for thread in threads:
            thread.join()


def test_in_place_gives_up_only_at_its_first_write_and_only_on_sqlite(store: Store) -> None:
    from openbatch.store.engine import WriterBusy

    with store.in_place():  # the writer is free: the transaction runs here
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("first"), NOW)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        if store.is_sqlite:
            with pytest.raises(WriterBusy), store.in_place():
                with store.write() as conn:
                    JOBS.insert(conn, ("acct",), job_body("never"), NOW)
    finally:
        release.set()
        holder.join()
    with store.in_place():  # a second write of the same block waits for the writer like any other
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("second"), NOW)
        with store.write() as conn:
            JOBS.insert(conn, ("acct",), job_body("third"), NOW)
    with store.read() as conn:
        assert JOBS.get(conn, ("acct",), ("never",)) is None
        assert all(JOBS.get(conn, ("acct",), (name,)) for name in ("first", "second", "third"))


def test_a_connection_dropped_while_idle_is_replaced_before_use(  # type: ignore[no-untyped-def]
        postgres_databases, monkeypatch: pytest.MonkeyPatch) -> None:
    """pool_pre_ping only for idle connections (engine._ping_when_idle): the database ended them, the next
    transaction gets fresh ones and succeeds."""
    import psycopg

    from openbatch.store import engine as engine_module

    url = postgres_databases()
    store = Store(url)
    try:
        store.migrate()
        with store.read() as conn:
            conn.execute(sa.text("SELECT 1"))
        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                                  (name,)).fetchone()
        assert ended and ended[0] >= 1
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT 2")).scalar() == 2
        with store.write() as conn:
            assert conn.execute(sa.text("SELECT 3")).scalar() == 3
    finally:
        store.dispose()


def test_a_value_longer_than_its_column_is_refused_not_cut(store: Store) -> None:
    """Rows inserted as column arrays (PostgreSQL) are cast to the unbounded element type first, so
    the column's own length still refuses what does not fit (an explicit cast would cut it)."""
    if store.is_sqlite:
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    with store.write() as conn:
        job = JOBS.insert(conn, ("acct",), job_body("j"), NOW)
    with pytest.raises(Exception, match="too long"), store.write() as conn:
        TASKS.insert_many(conn, (job.pk,), [task_body("fine"), task_body("x" * 65)], NOW)
    with store.read() as conn:
        assert TASKS.count(conn, (job.pk,)) == 0
