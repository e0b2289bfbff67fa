"""The fast path on PostgreSQL (models/pg_fast.py): marked statements run on asyncpg directly, writes
inside the session's transaction (a failure keeps nothing), plain reads without sending BEGIN, and
asyncpg's errors reach callers as SQLAlchemy's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from voisinage.models import db, pg_fast
from voisinage.models.meta import IdNode

from ..rig.events import received
from ..rig.statements import recorded_statements

AT = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)
INSERT = db.fast_insert(IdNode, id=bindparam("i"), node=bindparam("n"), created_at=bindparam("t"))
NODES = db.fast(select(IdNode.id, IdNode.node, IdNode.created_at).where(IdNode.id.in_(bindparam("ids", expanding=True)))
                .order_by(IdNode.id))
LOCKED = db.fast(select(IdNode.id).where(IdNode.id == bindparam("i")).with_for_update())


@pytest.fixture
async def sessionmaker(db_url: str) -> Any:
    if not db_url.startswith("postgresql"):
        pytest.skip("the asyncpg fast path is PostgreSQL's")
    engine, made = await db.open_database(db_url)
    yield made
    async with made() as session:
        await session.execute(text("DELETE FROM id_nodes WHERE id >= 920000"))
        await session.commit()
    await db.close_database(engine)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements that took the fast path, by their first word."""
    taken: list[str] = []
    real = pg_fast._PgCompiled.run

    async def counted(self: Any, connection: Any, driver: Any, parameters: Any) -> Any:
        taken.append(self.compiled.string.split()[0])
        return await real(self, connection, driver, parameters)

    monkeypatch.setattr(pg_fast._PgCompiled, "run", counted)
    return taken


def _row(i: int, node: int) -> dict[str, Any]:
    return {"i": i, "n": node, "t": AT}


async def _stored(sessionmaker: Any) -> list[tuple[int, int]]:
    async with sessionmaker() as session:
        return [tuple(row) for row in await session.execute(
            select(IdNode.id, IdNode.node).where(IdNode.id >= 920_000).order_by(IdNode.id))]


async def test_writes_run_inside_the_transaction_and_a_failure_keeps_none(sessionmaker, runs):
    with pytest.raises(RuntimeError):
        async with db.write_session(sessionmaker) as session:
            await session.execute(INSERT, _row(920_001, 1))  # begins the transaction through SQLAlchemy
            assert runs == []
            await session.execute(INSERT, [_row(920_002, 2), _row(920_003, 3)])  # an executemany
            found = await session.execute(NODES, {"ids": [920_001, 920_002, 920_003, 920_004]})
            assert runs == ["INSERT", "SELECT"]
            assert [(r.id, r.node, r.created_at) for r in found] == [(920_000 + k, k, AT) for k in (1, 2, 3)]
            raise RuntimeError("the request failed after its writes")
    assert await _stored(sessionmaker) == []
    async with db.write_session(sessionmaker) as session:
        await session.execute(INSERT, _row(920_001, 1))
        await session.execute(INSERT, [_row(920_002, 2)])
    assert await _stored(sessionmaker) == [(920_001, 1), (920_002, 2)]


async def test_a_plain_read_sends_no_begin_and_a_locking_read_waits_for_the_transaction(sessionmaker, runs):
    async with db.write_session(sessionmaker) as session:
        await session.execute(INSERT, _row(920_010, 10))
    async with db.read_session(sessionmaker) as session:
        assert (await session.scalars(NODES, {"ids": [920_010]})).all() == [920_010]
        assert await session.scalar(NODES, {"ids": [920_011]}) is None
        driver = (await session.connection()).sync_connection.connection.driver_connection
        assert not driver.is_in_transaction()  # no BEGIN, and so no ROLLBACK at the end
    assert runs == ["SELECT", "SELECT"]
    async with db.write_session(sessionmaker) as session:
        assert await session.scalar(LOCKED, {"i": 920_010}) == 920_010  # FOR UPDATE: through SQLAlchemy
        assert runs == ["SELECT", "SELECT"]
        driver = (await session.connection()).sync_connection.connection.driver_connection
        assert driver.is_in_transaction()
        assert await session.scalar(LOCKED, {"i": 920_010}) == 920_010  # in the transaction now: fast
        assert runs == ["SELECT", "SELECT", "SELECT"]


async def test_asyncpg_errors_arrive_as_sqlalchemys_and_the_transaction_keeps_nothing(sessionmaker, runs):
    with pytest.raises(IntegrityError):
        async with db.write_session(sessionmaker) as session:
            await session.execute(INSERT, _row(920_020, 20))
            await session.execute(INSERT, _row(920_021, 21))
            await session.execute(INSERT, _row(920_020, 22))  # the same id again
    assert runs == ["INSERT", "INSERT"]
    assert await _stored(sessionmaker) == []


async def test_pending_orm_changes_are_flushed_before_a_fast_statement(sessionmaker, runs):
    async with db.write_session(sessionmaker) as session:
        session.add(IdNode(id=920_030, node=30, created_at=AT))
        assert (await session.scalars(NODES, {"ids": [920_030]})).all() == [920_030]
        row = await session.get(IdNode, 920_030)
        row.node = 31
        assert [r.node for r in await session.execute(NODES, {"ids": [920_030]})] == [31]
    assert runs == ["SELECT", "SELECT"]
    assert await _stored(sessionmaker) == [(920_030, 31)]


async def test_a_statement_the_fast_path_cannot_run_as_written_is_refused(sessionmaker):
    from voisinage.models.actor import Actor

    table = Actor.__table__
    needs_updated_at = db.fast(update(table).where(table.c.id == bindparam("row")).values(statuses_count=1))
    literal = db.fast(select(IdNode.id).limit(bindparam("n", literal_execute=True)))
    async with db.write_session(sessionmaker) as session:
        with pytest.raises(ValueError, match="must set updated_at itself"):
            await session.execute(needs_updated_at, {"row": 1})
        with pytest.raises(ValueError, match="literal_execute"):
            await session.execute(literal, {"n": 1})
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(IdNode).where(IdNode.id >= 920_000)) == 0


async def _kill_pooled_connections(sessionmaker: Any) -> int:
    """Return a connection to the pool, then end its server process (as a restart of PostgreSQL would)."""
    async with db.read_session(sessionmaker) as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    import asyncpg

    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False).replace("+asyncpg", "")
    other = await asyncpg.connect(url)  # not from the pool, which would give the same connection back
    try:
        assert await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await other.close()
    return int(pid)


async def test_a_connection_idle_for_a_while_is_checked_and_replaced_when_dead(sessionmaker, monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    dead = await _kill_pooled_connections(sessionmaker)
    async with db.read_session(sessionmaker) as session:
        assert await session.scalar(NODES, {"ids": [1]}) == 1
        assert await session.scalar(text("SELECT pg_backend_pid()")) != dead


async def test_a_connection_that_dies_in_use_fails_once_and_the_pool_starts_afresh(sessionmaker, monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)  # given back moments ago: used without a check
    dead = await _kill_pooled_connections(sessionmaker)
    with pytest.raises(DBAPIError) as failed:
        async with db.read_session(sessionmaker) as session:
            await session.execute(NODES, {"ids": [1]})
    assert failed.value.connection_invalidated
    async with db.read_session(sessionmaker) as session:
        assert await session.scalar(NODES, {"ids": [1]}) == 1
        assert await session.scalar(text("SELECT pg_backend_pid()")) != dead


async def test_an_event_leaves_at_commit_and_never_for_a_transaction_rolled_back(sessionmaker):
    """`pg_notify` is a SELECT whose effect belongs to the transaction: a transaction's events go in one
    statement just before its commit, inside the transaction; none for a rollback."""
    from voisinage.models.events import Event, EventBus, bind_bus, queue_event

    bus = EventBus()
    await bus.attach(sessionmaker.kw["bind"])
    subscription = bus.subscribe()
    bind_bus(sessionmaker, bus)
    try:
        with recorded_statements(sessionmaker.kw["bind"]) as seen, pytest.raises(RuntimeError):
            async with db.write_session(sessionmaker) as session:
                await queue_event(session, Event("update", 1))
                await queue_event(session, Event("update", 2))
                assert await received(subscription) == []  # not before the commit
                raise RuntimeError("the request failed")
        assert await received(subscription) == []
        assert not [s for s in seen if "pg_notify" in s]  # a rollback sends none
        with recorded_statements(sessionmaker.kw["bind"]) as seen:
            async with db.write_session(sessionmaker) as session:
                await queue_event(session, Event("update", 3))
                await queue_event(session, Event("update", 4))
                assert await received(subscription) == []
        assert await received(subscription) == [3, 4]
        assert len([s for s in seen if "pg_notify" in s]) == 1  # both events in one statement, at commit
    finally:
        await bus.close()


async def test_many_events_of_one_transaction_all_leave(sessionmaker):
    """More events than one statement takes (`events.NOTIFY_BATCH`): sent in several, all of them."""
    from voisinage.models import events
    from voisinage.models.events import Event, EventBus, bind_bus, queue_event

    bus = EventBus()
    await bus.attach(sessionmaker.kw["bind"])
    subscription = bus.subscribe()
    bind_bus(sessionmaker, bus)
    count = events.NOTIFY_BATCH * 2 + 3
    try:
        with recorded_statements(sessionmaker.kw["bind"]) as seen:
            async with db.write_session(sessionmaker) as session:
                for i in range(count):
                    await queue_event(session, Event("update", i))
        assert await received(subscription) == list(range(count))
        assert len([s for s in seen if "pg_notify" in s]) == 3
    finally:
        await bus.close()
