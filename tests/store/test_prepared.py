"""Prepared statements against both real databases: they answer exactly what SQLAlchemy answers."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from openbatch.store import schema
from openbatch.store.engine import Store
from openbatch.store.prepared import Prepared, read_ahead

WHEN = datetime(2026, 5, 1, 12, 30, 15, 123456)
LATER = datetime(2026, 5, 1, 12, 31, 0, 1)
t = schema.tasks


@pytest.fixture
def store(any_store: Store) -> Store:
    store = any_store
    with store.write() as conn:
        conn.execute(schema.jobs.insert().values(
            account="a", id="j", id_key="j", state="active", priority=0, creation_time=WHEN,
            state_transition_time=WHEN, has_preparation=False, etag="e", last_modified=WHEN, body="{}"))
    return store


_INSERT = Prepared(t.insert().values({name: sa.bindparam(name) for name in (
    "job_pk", "id", "id_key", "state", "required_slots", "creation_time", "state_transition_time", "etag",
    "last_modified", "body")}))


def _add(store: Store, count: int) -> int:
    with store.write() as conn:
        job_pk = conn.execute(sa.select(schema.jobs.c.pk)).scalar_one()
        _INSERT.run_many(conn, [
            {"job_pk": job_pk, "id": f"T{i}", "id_key": f"t{i}", "state": "active", "required_slots": 1 + i % 2,
             "creation_time": WHEN, "state_transition_time": WHEN, "etag": f"e{i}", "last_modified": WHEN,
             "body": f'{{"i":{i}}}'} for i in range(count)])
    return job_pk


def test_rows_equal_sqlalchemy_rows(store: Store) -> None:
    """Types (datetimes, booleans), order, LIMIT, default-valued binds, expanding IN lists."""
    job_pk = _add(store, 6)
    query = (sa.select(t).where(t.c.job_pk == sa.bindparam("b_job"), t.c.state == "active",
                                t.c.id_key.in_(sa.bindparam("b_keys", expanding=True)))
             .order_by(t.c.pk).limit(sa.bindparam("b_limit")).with_for_update())
    params = {"b_job": job_pk, "b_keys": ["t1", "t2", "t4", "t5"], "b_limit": 3}
    with store.write() as conn:
        mine = Prepared(query).rows(conn, params)
        theirs = conn.execute(query, params).all()
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
    assert [r._mapping for r in mine] == [dict(r._mapping) for r in theirs]
    assert mine[0].creation_time == WHEN and mine[0].files_removed is False
    assert [r.id for r in mine] == ["T1", "T2", "T4"]


def test_in_lists_of_every_length_reuse_their_statement(store: Store) -> None:
    _add(store, 5)
    query = Prepared(sa.select(t.c.id).where(t.c.id_key.in_(sa.bindparam("b_keys", expanding=True))).order_by(t.c.pk))
    with store.read() as conn:
        for size in (1, 3, 5, 3):
            keys = [f"t{i}" for i in range(size)]
            assert [r.id for r in query.rows(conn, {"b_keys": keys})] == [f"T{i}" for i in range(size)]
        with pytest.raises(ValueError):
            query.rows(conn, {"b_keys": []})


def test_in_lists_of_keys_and_numbers_and_not_in_give_what_sqlalchemy_gives(store: Store) -> None:
    """Numbers and keys, NOT IN, and any iterable of values."""
    _add(store, 6)
    query = (sa.select(t.c.id).where(t.c.pk.in_(sa.bindparam("b_pks", expanding=True)),
                                     t.c.id_key.not_in(sa.bindparam("b_keys", expanding=True))).order_by(t.c.pk))
    with store.read() as conn:
        pks = [r.pk for r in conn.execute(sa.select(t.c.pk).order_by(t.c.pk))]
        for wanted, skipped in (([pks[0]], ["t9"]), (pks[:4], ["t1", "t3"]), (set(pks), ("t0",))):
            params = {"b_pks": wanted, "b_keys": skipped}
            mine = [r.id for r in Prepared(query).rows(conn, params)]
            assert mine == list(conn.execute(query, {"b_pks": list(wanted), "b_keys": list(skipped)}).scalars())
            assert mine and len(mine) == len(set(wanted)) - len([k for k in skipped if k != "t9"])


def test_updates_count_rows_and_bind_datetimes(store: Store) -> None:
    job_pk = _add(store, 4)
    update = Prepared(t.update().where(t.c.pk == sa.bindparam("b_pk")).values(
        state=sa.bindparam("b_state"), end_time=sa.bindparam("b_end")))
    with store.write() as conn:
        pks = [r.pk for r in conn.execute(sa.select(t.c.pk).order_by(t.c.pk))]
        assert update.run(conn, {"b_pk": pks[0], "b_state": "running", "b_end": LATER}) == 1
        assert update.run(conn, {"b_pk": -1, "b_state": "running", "b_end": LATER}) == 0
        update.run_many(conn, [{"b_pk": pk, "b_state": "completed", "b_end": LATER} for pk in pks[1:]])
        update.run_many(conn, [])
    with store.read() as conn:
        rows = conn.execute(sa.select(t.c.state, t.c.end_time).where(t.c.job_pk == job_pk).order_by(t.c.pk)).all()
    assert rows == [("running", LATER)] + [("completed", LATER)] * 3


def test_rolled_back_with_the_transaction(store: Store) -> None:
    _add(store, 2)
    update = Prepared(t.update().values(state="completed"))
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            assert update.run(conn) == 2
            raise RuntimeError("abort")
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(t.c.state == "active")).scalar_one() == 2


def test_literal_rendered_parameters_are_refused(store: Store) -> None:
    query = Prepared(sa.select(t.c.id).where(t.c.id_key == sa.bindparam("b", literal_execute=True)))
    with store.read() as conn, pytest.raises(ValueError, match="not supported"):
        query.rows(conn, {"b": "x"})


_RENAME = Prepared(t.update().where(t.c.id_key == sa.bindparam("b_key")).values(id=sa.bindparam("b_id")))
_BY_KEY = Prepared(sa.select(t.c.id).where(t.c.id_key == sa.bindparam("b_key")))


def test_deferred_writes_are_seen_by_the_next_read_whichever_path_reads(store: Store) -> None:
    """PostgreSQL defers writes to the next read or the commit (one round trip for many); every read of
    the transaction still sees them, through a prepared statement or through SQLAlchemy, and so does the
    next transaction."""
    _add(store, 3)
    with store.write() as conn:
        _RENAME.write(conn, {"b_key": "t0", "b_id": "first"})
        assert len(conn.info.get("openbatch.prepared.deferred", ())) == (0 if store.is_sqlite else 1)
        assert _BY_KEY.first(conn, {"b_key": "t0"}).id == "first"
        _RENAME.write(conn, {"b_key": "t1", "b_id": "second"})
        assert conn.execute(sa.select(t.c.id).where(t.c.id_key == "t1")).scalar_one() == "second"
        _RENAME.run_many(conn, [{"b_key": "t2", "b_id": "third"}])
    with store.read() as conn:
        assert sorted(conn.execute(sa.select(t.c.id)).scalars()) == ["first", "second", "third"]
        assert "openbatch.prepared.deferred" not in conn.info


def test_a_deferred_write_that_fails_fails_its_transaction(store: Store) -> None:
    """The error of a write sent later (a unique violation here) still ends the transaction that made it,
    and nothing of that transaction is kept."""
    _add(store, 2)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with store.write() as conn:
            _RENAME.write(conn, {"b_key": "t0", "b_id": "renamed"})
            _INSERT.run_many(conn, [{   # (job_pk, id_key) is unique
                "job_pk": 1, "id": "T0", "id_key": "t0", "state": "active", "required_slots": 1, "creation_time": WHEN,
                "state_transition_time": WHEN, "etag": "e", "last_modified": WHEN, "body": "{}"}])
    with store.read() as conn:
        assert sorted(conn.execute(sa.select(t.c.id)).scalars()) == ["T0", "T1"]
    with store.write() as conn:   # the connection is usable again
        _RENAME.write(conn, {"b_key": "t0", "b_id": "again"})
    with store.read() as conn:
        assert sorted(conn.execute(sa.select(t.c.id)).scalars()) == ["T1", "again"]


def test_many_deferred_writes_then_a_read(store: Store) -> None:
    """Enough writes waiting that PostgreSQL answers some of them before the read is sent: the read still
    gets its own rows, not a write's result."""
    _add(store, 3)
    with store.write() as conn:
        for i in range(2_000):
            _RENAME.write(conn, {"b_key": "t0", "b_id": f"n{i}"})
        assert _BY_KEY.first(conn, {"b_key": "t0"}).id == "n1999"
        for i in range(2_000):
            _RENAME.write(conn, {"b_key": "t1", "b_id": f"m{i}"})
        assert [tuple(r) for r in _BY_KEY.rows(conn, {"b_key": "t1"})] == [("m1999",)]


def _sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements this thread sends through psycopg from now on (another thread's are not the test's:
    the session's shared live servers, tests/support/live.py, write their pools' usage meanwhile)."""
    sent: list[str] = []
    original = psycopg.Cursor.execute
    mine = threading.get_ident()

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if threading.get_ident() == mine:
            sent.append(str(query))
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


@pytest.mark.parametrize("lock", ["exclusive", "shared", "none"])
def test_every_order_of_reads_and_deferred_writes_commits_all_its_writes(store: Store, lock: str) -> None:
    """PostgreSQL sends a write transaction's BEGIN and lock with its first statement and its COMMIT with
    its last writes: whatever the order of reads and writes, every write is kept and every read sees
    the writes before it (a transaction whose last writes followed a read lost them once)."""
    _add(store, 1)
    count = Prepared(sa.select(sa.func.count().label("n")).select_from(t).where(t.c.id_key.like("w%")))
    expected = 0
    for pattern in itertools.product("rw", repeat=4):
        with store.write(lock=lock) as conn:   # type: ignore[arg-type]
            for step in pattern:
                if step == "r":
                    assert count.first(conn).n == expected
                else:
                    _INSERT.write(conn, {"job_pk": 1, "id": f"W{expected}", "id_key": f"w{expected}",
                                         "state": "active", "required_slots": 1, "creation_time": WHEN,
                                         "state_transition_time": WHEN, "etag": "e", "last_modified": WHEN,
                                         "body": "{}"})
                    expected += 1
        with store.read() as conn:
            assert count.first(conn).n == expected, pattern


def test_a_transaction_that_runs_nothing_sends_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its BEGIN, lock and COMMIT are never sent (nor is the lock taken): nothing to wait for."""
    if store.is_sqlite:
        pytest.skip("PostgreSQL sends a transaction's opening with its first statement")
    sent = _sent(monkeypatch)
    with store.write():
        pass
    assert sent == []
    with store.write() as conn:
        assert _BY_KEY.first(conn, {"b_key": "t0"}) is None
    assert sent[0] == "BEGIN" and "pg_advisory_xact_lock" in sent[1] and len(sent) == 3, sent


def test_writes_before_an_error_are_never_committed(store: Store) -> None:
    """An exception after deferred writes (sent with a read, or still waiting) rolls all of them back."""
    _add(store, 2)
    for read_between in (False, True):
        with pytest.raises(RuntimeError):
            with store.write() as conn:
                _RENAME.write(conn, {"b_key": "t0", "b_id": "lost"})
                if read_between:
                    assert _BY_KEY.first(conn, {"b_key": "t0"}).id == "lost"
                _RENAME.write(conn, {"b_key": "t1", "b_id": "lost"})
                raise RuntimeError("abort")
        with store.read() as conn:
            assert sorted(conn.execute(sa.select(t.c.id)).scalars()) == ["T0", "T1"]


_COUNT = Prepared(sa.select(sa.func.count().label("n")).select_from(t).where(t.c.state == sa.bindparam("b_state")))
_DELETE_RETURNING = Prepared(t.delete().where(t.c.id_key == sa.bindparam("b_key")).returning(t.c.pk))


def test_reads_ahead_go_with_the_next_read_and_are_taken_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _add(store, 3)
    sent = _sent(monkeypatch)
    ids = Prepared(sa.select(t.c.id).order_by(t.c.id))
    with store.write() as conn:
        read_ahead(conn, [(_COUNT, {"b_state": "active"}), (_BY_KEY, {"b_key": "t1"})])
        assert [row.id for row in ids.rows(conn)] == ["T0", "T1", "T2"]
        before = len(sent)
        assert _COUNT.first(conn, {"b_state": "active"}).n == 3
        assert _BY_KEY.first(conn, {"b_key": "t1"}).id == "T1"
        assert len(sent) == before   # both were read with the first read
        assert _BY_KEY.first(conn, {"b_key": "t1"}).id == "T1"   # taken once: read again
        assert len(sent) == (0 if store.is_sqlite else before + 1)   # (SQLite's cursors are not psycopg's)
    if not store.is_sqlite:
        assert sent[:5] == ["BEGIN", "SELECT pg_advisory_xact_lock(1869636974)", *[str(s.compiled_for(
            store.engine.dialect).sql) for s in (_COUNT, _BY_KEY, ids)]], sent


@pytest.mark.parametrize("between", ["deferred write", "statement run", "delete returning", "sqlalchemy"])
def test_a_change_between_a_read_ahead_and_its_use_is_seen(store: Store, between: str) -> None:
    """Whatever changes rows after the reads ahead were sent drops them: their use reads afresh."""
    _add(store, 3)
    done = Prepared(t.update().where(t.c.id_key == "t0").values(state="completed"))
    with store.write() as conn:
        read_ahead(conn, [(_COUNT, {"b_state": "active"}), (_BY_KEY, {"b_key": "t2"})])
        assert _BY_KEY.first(conn, {"b_key": "t1"}).id == "T1"
        if between == "deferred write":
            done.write(conn)
        elif between == "statement run":
            assert done.run(conn) == 1
        elif between == "delete returning":
            assert len(_DELETE_RETURNING.rows(conn, {"b_key": "t0"})) == 1
        else:
            conn.execute(t.update().where(t.c.id_key == "t0").values(state="completed"))
        assert _COUNT.first(conn, {"b_state": "active"}).n == 2
        _RENAME.write(conn, {"b_key": "t2", "b_id": "renamed"})
        assert _BY_KEY.first(conn, {"b_key": "t2"}).id == "renamed"


def test_a_read_ahead_used_with_other_parameters_reads_afresh(store: Store) -> None:
    _add(store, 3)
    with store.write() as conn:
        read_ahead(conn, [(_COUNT, {"b_state": "active"})])
        assert _BY_KEY.first(conn, {"b_key": "t1"}).id == "T1"
        assert _COUNT.first(conn, {"b_state": "completed"}).n == 0
        assert _COUNT.first(conn, {"b_state": "active"}).n == 3
