"""SQLite group commit: the writers of one process that queue for the write lock together share one
transaction and one commit (`db.write_session`), each leaving once that commit is made; one that fails
loses its own work only, a failed commit reaches all of them, and none is left waiting."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from voisinage.models import db
from voisinage.models.events import Event, EventBus, bind_bus, queue_event
from voisinage.models.meta import MetaValue

from ..rig.events import received


@pytest.fixture
async def sqlite_file(db_url: str) -> Any:
    if not db_url.startswith("sqlite"):
        pytest.skip("group commit is for SQLite files, whose writes run on the event loop")
    engine, sessionmaker = await db.open_database(db_url)
    bus = EventBus()
    await bus.attach(engine)
    bind_bus(sessionmaker, bus)
    commits: list[int] = []
    writer = db.loop_engine(engine, "writer")

    def committed(connection: Any) -> None:
        commits.append(1)

    event.listen(writer, "commit", committed)
    yield sessionmaker, bus, commits, db_url.split("///", 1)[1]
    event.remove(writer, "commit", committed)
    await bus.close()
    await db.close_database(engine)


def _stored(path: str, prefix: str) -> set[str]:
    """The keys committed, as another connection (another process) sees them."""
    connection = sqlite3.connect(path)
    try:
        return {key for (key,) in connection.execute("SELECT key FROM meta WHERE key LIKE ?", (f"{prefix}%",))}
    finally:
        connection.close()


async def test_writers_that_queue_together_share_one_commit_and_leave_after_it(sqlite_file):
    sessionmaker, _, commits, path = sqlite_file
    sessions: list[int] = []
    seen_on_leaving: dict[str, bool] = {}

    async def write(key: str) -> None:
        async with db.write_session(sessionmaker) as session:
            sessions.append(id(session))
            session.add(MetaValue(key=key, value="x"))
        seen_on_leaving[key] = key in _stored(path, key)  # committed by the time it leaves

    keys = [f"together-{i:02}" for i in range(20)]
    await asyncio.gather(*(write(key) for key in keys))
    assert _stored(path, "together-") == set(keys)
    assert all(seen_on_leaving[key] for key in keys)
    # at most GROUP_MOST writers a commit: 16, then the 4 others
    assert len(commits) == 2 == len(set(sessions))
    assert sessions.count(sessions[0]) == db.GROUP_MOST


async def test_a_writer_alone_commits_at_once(sqlite_file):
    sessionmaker, _, commits, path = sqlite_file
    async with db.write_session(sessionmaker) as session:
        session.add(MetaValue(key="alone", value="x"))
    assert _stored(path, "alone") == {"alone"} and len(commits) == 1


async def test_a_writer_that_fails_in_a_group_loses_its_own_work_and_events_only(sqlite_file):
    sessionmaker, bus, commits, path = sqlite_file
    subscription = bus.subscribe()

    async def write(number: int, fails: bool = False) -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key=f"part-{number}", value="x"))
            await queue_event(session, Event("update", number))
            await session.flush()
            if fails:
                raise ValueError("this request failed half way")

    results = await asyncio.gather(write(1), write(2, fails=True), write(3), return_exceptions=True)
    assert results[0] is None and results[2] is None and isinstance(results[1], ValueError)
    assert _stored(path, "part-") == {"part-1", "part-3"}
    assert sorted(await received(subscription)) == [1, 3]
    assert len(commits) == 1


async def test_the_first_writer_failing_leaves_nothing_and_the_next_ones_go_on(sqlite_file):
    sessionmaker, _, _, path = sqlite_file

    async def write(number: int, fails: bool = False) -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key=f"first-{number}", value="x"))
            await session.flush()
            if fails:
                raise ValueError("the first request failed")

    results = await asyncio.gather(write(1, fails=True), write(2), write(3), return_exceptions=True)
    assert isinstance(results[0], ValueError) and results[1:] == [None, None]
    assert _stored(path, "first-") == {"first-2", "first-3"}


async def test_a_failed_commit_reaches_every_writer_of_the_group_and_keeps_nothing(sqlite_file, monkeypatch):
    sessionmaker, bus, _, path = sqlite_file
    subscription = bus.subscribe()
    real_commit = Session.commit

    def failing_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(Session, "commit", failing_commit)

    async def write(number: int) -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key=f"lost-{number}", value="x"))
            await queue_event(session, Event("update", number))

    results = await asyncio.gather(*(write(n) for n in range(4)), return_exceptions=True)
    assert all(isinstance(result, OperationalError) for result in results)
    assert _stored(path, "lost-") == set() and await received(subscription) == []
    monkeypatch.setattr(Session, "commit", real_commit)
    await write(9)  # the lock and the file are free again
    assert _stored(path, "lost-") == {"lost-9"}


async def test_a_writers_objects_stay_loaded_when_another_of_its_group_expires_them(sqlite_file):
    sessionmaker, _, _, _ = sqlite_file
    kept: list[MetaValue] = []

    async def first() -> None:
        async with db.write_session(sessionmaker) as session:
            row = MetaValue(key="kept-loaded", value="as written")
            session.add(row)
            await session.flush()
            kept.append(row)

    async def expiring() -> None:
        async with db.write_session(sessionmaker) as session:
            session.expire_all()  # as deleting a status does, to read counters changed in SQL
            session.add(MetaValue(key="kept-other", value="x"))

    await asyncio.gather(first(), expiring())
    assert kept[0].value == "as written"  # not expired and detached: loaded again before the commit


async def test_a_writer_cancelled_when_the_transaction_is_left_to_it_does_not_hold_the_commit(sqlite_file):
    """The writer the transaction is left to is cancelled before it runs: the lock finds nobody else
    waiting and commits for the writers waiting for that commit."""
    sessionmaker, _, _, path = sqlite_file
    loop = asyncio.get_running_loop()
    late: list[asyncio.Task[None]] = []

    async def late_writer() -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key="left-late", value="x"))

    def cancel_late() -> None:
        late[0].cancel()

    async def first() -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key="left-first", value="x"))
            late.append(asyncio.create_task(late_writer()))
            # runs while `first` hands the transaction over: `late` has been woken, has not run yet
            loop.call_soon(lambda: loop.call_soon(cancel_late))

    await asyncio.wait_for(first(), timeout=10)
    with pytest.raises(asyncio.CancelledError):
        await late[0]
    assert _stored(path, "left-") == {"left-first"}
    async with db.write_session(sessionmaker) as session:  # the lock is free
        assert (await session.execute(select(MetaValue.key).where(MetaValue.key == "left-first"))).scalar() == "left-first"


async def test_a_writer_cannot_roll_back_the_shared_transaction_by_hand(sqlite_file):
    """`rollback()` inside a write session would undo the other writers' work: it raises, and the
    writer's own work goes as with any failure."""
    sessionmaker, _, _, path = sqlite_file

    async def keeps() -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key="hand-kept", value="x"))

    async def rolls_back() -> None:
        async with db.write_session(sessionmaker) as session:
            session.add(MetaValue(key="hand-rolled", value="x"))
            await session.flush()
            await session.rollback()

    results = await asyncio.gather(keeps(), rolls_back(), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], RuntimeError)
    assert _stored(path, "hand-") == {"hand-kept"}
