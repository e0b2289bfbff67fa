"""Sessions on the event loop's thread (SQLite files): reads never write, a writer waiting for another
process's write lock leaves the loop running, and a failed write keeps nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from voisinage.models import db
from voisinage.models.meta import MetaValue


async def _open(url: str):
    return await db.open_database(url)


async def _count(sessionmaker) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(MetaValue)))


def _sqlite_path(db_url: str) -> str:
    if not db_url.startswith("sqlite"):
        pytest.skip("sessions on the loop's thread are for SQLite files")
    return db_url.split("///", 1)[1]


async def test_sessions_run_on_the_loop_only_for_sqlite_files(db_url):
    engine, sessionmaker = await _open(db_url)
    try:
        async with db.read_session(sessionmaker) as reader, db.write_session(sessionmaker) as writer:
            on_loop = db_url.startswith("sqlite")
            assert isinstance(reader, db.LoopSession) is on_loop
            assert isinstance(writer, db.LoopSession) is on_loop
            assert db.writes_on_loop(sessionmaker) is on_loop
            assert await reader.scalar(text("SELECT 1")) == 1
    finally:
        await db.close_database(engine)


async def test_a_read_session_cannot_write(db_url):
    _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    try:
        before = await _count(sessionmaker)
        with pytest.raises(OperationalError, match="readonly"):
            async with db.read_session(sessionmaker) as session:
                session.add(MetaValue(key="written", value="by a reader"))
                await session.flush()
        assert await _count(sessionmaker) == before
    finally:
        await db.close_database(engine)


async def test_a_writer_waits_for_another_process_lock_without_stopping_the_loop(db_url):
    path = _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    other = sqlite3.connect(path, isolation_level=None)  # the command line, writing meanwhile
    try:
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def write() -> float:
            async with db.write_session(sessionmaker) as session:
                session.add(MetaValue(key="after the lock", value="x"))
            return time.monotonic()

        clock = asyncio.create_task(ticker())
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not writing.done()  # still waiting for the lock...
        assert ticks >= 10  # ...while the loop went on
        released = time.monotonic()
        other.execute("COMMIT")
        finished = await asyncio.wait_for(writing, 5)
        clock.cancel()
        assert finished >= released
        async with sessionmaker() as session:
            assert await session.get(MetaValue, "after the lock") is not None
    finally:
        other.close()
        await db.close_database(engine)


async def test_a_writer_gives_up_after_busy_seconds_and_keeps_nothing(db_url, monkeypatch):
    path = _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    other = sqlite3.connect(path, isolation_level=None)
    monkeypatch.setattr(db, "BUSY_SECONDS", 0.2)
    try:
        before = await _count(sessionmaker)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            async with db.write_session(sessionmaker) as session:
                session.add(MetaValue(key="never", value="x"))
        other.execute("ROLLBACK")
        assert await _count(sessionmaker) == before
    finally:
        other.close()
        await db.close_database(engine)


async def test_a_failed_write_keeps_nothing_and_the_next_one_works(db_url):
    engine, sessionmaker = await _open(db_url)
    try:
        before = await _count(sessionmaker)
        with pytest.raises(RuntimeError):
            async with db.write_session(sessionmaker) as session:
                session.add(MetaValue(key="half", value="x"))
                await session.flush()
                raise RuntimeError("the request failed half way")
        assert await _count(sessionmaker) == before
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key="whole", value="x"))
        assert await _count(sessionmaker) == before + 1
    finally:
        await db.close_database(engine)


async def test_a_fast_insert_of_many_rows_stores_what_sqlalchemy_would(db_url):
    """`db.fast_insert` with a list of parameter sets is one executemany through sqlite3 on a SQLite
    file (SQLAlchemy's own insert elsewhere): the stored values are byte for byte SQLAlchemy's, dates
    included, and a failure inside the transaction keeps none of the rows."""
    import datetime as dt

    from sqlalchemy import bindparam, insert

    from voisinage.models.meta import IdNode

    engine, sessionmaker = await _open(db_url)
    at = dt.datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=dt.UTC)
    statement = db.fast_insert(IdNode, id=bindparam("i"), node=bindparam("n"), seen_at=bindparam("t"),
                               created_at=bindparam("t"))
    rows = [{"i": 900_000 + k, "n": 4000 + k, "t": at + dt.timedelta(seconds=k)} for k in range(3)]
    raw = text("SELECT id, node, CAST(seen_at AS TEXT), CAST(created_at AS TEXT) FROM id_nodes "
               "WHERE id >= 900000 ORDER BY id")
    try:
        async with db.write_session(sessionmaker) as session:
            await session.execute(statement, rows)
        async with sessionmaker() as session:
            fast = [tuple(row) for row in (await session.execute(raw)).all()]
            await session.execute(text("DELETE FROM id_nodes WHERE id >= 900000"))
            await session.execute(insert(IdNode), [{"id": r["i"], "node": r["n"], "seen_at": r["t"],
                                                    "created_at": r["t"]} for r in rows])
            slow = [tuple(row) for row in (await session.execute(raw)).all()]
            await session.execute(text("DELETE FROM id_nodes WHERE id >= 900000"))
            await session.commit()
        assert fast == slow and [row[1] for row in fast] == [4000, 4001, 4002]
        with pytest.raises(RuntimeError):
            async with db.write_session(sessionmaker) as session:
                await session.execute(statement, rows)
                raise RuntimeError("the request failed after the insert")
        async with sessionmaker() as session:
            assert (await session.execute(raw)).all() == []
    finally:
        await db.close_database(engine)


async def test_insert_new_stores_the_row_it_returns_and_refuses_a_row_without_its_id(db_url):
    """`db.insert_new` writes at once, with the columns' defaults, and returns an instance of exactly the
    stored values; a row missing a column without a scalar default is refused before anything is sent."""
    import datetime as dt

    from voisinage.models.meta import IdNode

    engine, sessionmaker = await _open(db_url)
    at = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    try:
        async with db.write_session(sessionmaker) as session:
            made = await db.insert_new(session, IdNode, id=910_001, created_at=at)
            await db.insert_all(session, IdNode, [{"id": 910_002, "node": 7, "created_at": at}])
            with pytest.raises(TypeError, match="needs created_at"):
                await db.insert_new(session, IdNode, id=910_003)
        assert (made.id, made.node, made.seen_at, made.created_at) == (910_001, None, None, at)
        async with sessionmaker() as session:
            stored = {row.id: (row.node, row.seen_at, row.created_at)
                      for row in await session.scalars(select(IdNode).where(IdNode.id >= 910_000))}
            await session.execute(text("DELETE FROM id_nodes WHERE id >= 910000"))
            await session.commit()
        assert stored == {910_001: (None, None, at), 910_002: (7, None, at)}
    finally:
        await db.close_database(engine)


async def test_a_fast_statement_that_needs_computed_defaults_is_refused(db_url):
    """SQLAlchemy computes `onupdate` values (an actor's `updated_at`) as it executes; the fast path does
    not, so a fast statement leaving one to it is refused rather than writing NULL."""
    from sqlalchemy import bindparam, update

    from voisinage.models.actor import Actor

    _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    table = Actor.__table__
    statement = db.fast(update(table).where(table.c.id == bindparam("row")).values(statuses_count=1))
    try:
        with pytest.raises(ValueError, match="must set updated_at itself"):
            async with db.write_session(sessionmaker) as session:
                await session.execute(statement, {"row": 1})
    finally:
        await db.close_database(engine)


def _rows_in_main_file(path: str) -> int:
    """MetaValue rows in the database file itself, ignoring the write-ahead log: what checkpoints copied."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM meta").fetchone()[0]
    finally:
        connection.close()


async def _write_rows(sessionmaker, prefix: str, count: int) -> None:
    for i in range(count):
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key=f"{prefix}{i}", value="x" * 200))


async def test_checkpoints_run_off_the_loop_and_stop_with_the_block(db_url):
    """The loop writer leaves the write-ahead log to the checkpointer's thread: without it, a few commits
    stay in the log only (the writer's own threshold is far); with it, they reach the database file
    soon after their commit; the thread ends with the block."""
    path = _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    try:
        before = _rows_in_main_file(path)
        await _write_rows(sessionmaker, "unchecked", 20)
        await asyncio.sleep(db.CHECKPOINT_SECONDS * 3)
        assert _rows_in_main_file(path) == before  # nothing copied the log back yet

        async with db.checkpointing(engine):
            assert [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]
            await _write_rows(sessionmaker, "checked", 5)
            deadline = time.monotonic() + 10
            while _rows_in_main_file(path) < before + 25 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert _rows_in_main_file(path) == before + 25
        assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]
        assert await _count(sessionmaker) == before + 25
    finally:
        await db.close_database(engine)


async def test_checkpointing_is_nothing_on_other_databases(db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has no write-ahead log of ours to copy")
    engine, sessionmaker = await _open(db_url)
    try:
        async with db.checkpointing(engine):
            assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]
            await _write_rows(sessionmaker, "pg", 2)
        assert await _count(sessionmaker) >= 2
    finally:
        await db.close_database(engine)


async def test_fast_statements_follow_the_session_across_its_commits(db_url):
    """A loop session asks the session for its connection once per transaction: after a commit (or a
    rollback) its fast statements run in the next transaction, which sees what others wrote since,
    while inside one they keep its snapshot."""
    path = _sqlite_path(db_url)
    engine, sessionmaker = await _open(db_url)
    count = db.fast(select(func.count()).select_from(MetaValue))
    other = sqlite3.connect(path)
    try:
        async with db.read_session(sessionmaker) as session:
            before = await session.scalar(count)
            other.execute("INSERT INTO meta (key, value) VALUES ('from another', 'connection')")
            other.commit()
            assert await session.scalar(count) == before  # the same read transaction
            await session.commit()
            assert await session.scalar(count) == before + 1  # a new one
            other.execute("INSERT INTO meta (key, value) VALUES ('and again', 'connection')")
            other.commit()
            await session.rollback()
            assert await session.scalar(count) == before + 2
    finally:
        other.close()
        await db.close_database(engine)
