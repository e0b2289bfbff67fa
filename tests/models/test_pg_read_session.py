"""PostgreSQL's read session (`pg_fast.PgReadSession`): fast statements without an ORM session, anything
else through one bound to the same connection, and the connection back in the pool at the end."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import DBAPIError

from tests.rig.statements import recorded_statements
from voisinage.models import db, pg_fast
from voisinage.models.meta import MetaValue

COUNT = db.fast(select(func.count()).select_from(MetaValue))
BY_KEY = db.fast(select(MetaValue.value).where(MetaValue.key == bindparam("key")))


@pytest.fixture
async def opened(db_url: str):
    """(engine, sessionmaker) of a PostgreSQL database, closed after the test."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the read session without an ORM session is PostgreSQL's")
    engine, sessionmaker = await db.open_database(db_url)
    yield engine, sessionmaker
    await db.close_database(engine)


async def _store(sessionmaker, **values: str) -> None:
    async with db.write_session(sessionmaker) as session:
        for key, value in values.items():
            session.add(MetaValue(key=key, value=value))


async def test_fast_reads_run_without_an_orm_session_on_one_pooled_connection(opened):
    engine, sessionmaker = opened
    await _store(sessionmaker, colour="vert", size="grand")
    pool = engine.sync_engine.pool
    with recorded_statements(engine) as seen:
        async with db.read_session(sessionmaker) as session:
            assert isinstance(session, pg_fast.PgReadSession)
            assert await session.scalar(BY_KEY, {"key": "colour"}) == "vert"
            assert list(await session.scalars(BY_KEY, {"key": "size"})) == ["grand"]
            rows = await session.execute(COUNT)
            assert session._session is None  # no ORM session was made
            assert pool.checkedout() == 1
    assert pool.checkedout() == 0
    assert rows.all()[0][0] >= 2
    assert not any(s.strip().upper().startswith(("BEGIN", "ROLLBACK")) for s in seen)
    assert len(seen) == 3


async def test_an_orm_read_after_fast_ones_shares_their_connection(opened):
    engine, sessionmaker = opened
    await _store(sessionmaker, colour="bleu")
    pool = engine.sync_engine.pool
    async with db.read_session(sessionmaker) as session:
        assert await session.scalar(BY_KEY, {"key": "colour"}) == "bleu"
        connection = session._connection
        row = await session.get(MetaValue, "colour")  # the ORM, through an attribute of a session
        assert row is not None and row.value == "bleu"
        assert (await session.scalars(select(MetaValue.key).where(MetaValue.key == "colour"))).all() == ["colour"]
        assert session._session is not None and session._session.bind is connection
        assert pool.checkedout() == 1  # never two of the pool's connections for one request
        assert await session.scalar(BY_KEY, {"key": "colour"}) == "bleu"  # now in the session's transaction
    assert pool.checkedout() == 0


async def test_an_orm_read_first_takes_one_connection_and_fast_reads_follow_it(opened):
    engine, sessionmaker = opened
    await _store(sessionmaker, colour="rouge")
    pool = engine.sync_engine.pool
    async with db.read_session(sessionmaker) as session:
        assert (await session.get(MetaValue, "colour")).value == "rouge"
        assert await session.scalar(BY_KEY, {"key": "colour"}) == "rouge"
        assert session._connection is None and pool.checkedout() == 1
    assert pool.checkedout() == 0


async def test_a_failed_fast_read_still_gives_the_connection_back(opened):
    engine, sessionmaker = opened
    pool = engine.sync_engine.pool
    broken = db.fast(select(func.count()).select_from(MetaValue).where(MetaValue.key == bindparam("key")))
    with pytest.raises(DBAPIError, match="expected str, got int"):
        async with db.read_session(sessionmaker) as session:
            await session.scalar(broken, {"key": 12})  # a number for a text column: asyncpg refuses it
    assert pool.checkedout() == 0
    async with db.read_session(sessionmaker) as session:  # and the pool's connections still serve
        assert await session.scalar(COUNT) >= 0
