"""Live events leave when their transaction commits, whatever SAVEPOINTs it went through: SQLAlchemy
tells a savepoint's release as a commit and its rollback as a rollback, and neither ends the
transaction. `events.savepoint` drops the events queued inside a savepoint rolled back."""

from __future__ import annotations

from typing import Any

import pytest

from voisinage.models import db
from voisinage.models.events import Event, EventBus, bind_bus, queue_event, savepoint

from ..rig.events import received


@pytest.fixture
async def bus_and_sessionmaker(db_url: str) -> Any:
    engine, sessionmaker = await db.open_database(db_url)
    bus = EventBus()
    await bus.attach(engine)
    bind_bus(sessionmaker, bus)
    yield bus, sessionmaker
    await bus.close()
    await db.close_database(engine)


async def test_events_wait_for_the_commit_through_savepoints(bus_and_sessionmaker):
    bus, sessionmaker = bus_and_sessionmaker
    subscription = bus.subscribe()
    async with db.write_session(sessionmaker) as session:
        await queue_event(session, Event("update", 1))
        async with session.begin_nested():  # released: not the end of the transaction
            await queue_event(session, Event("update", 2))
        assert await received(subscription) == []
        with pytest.raises(ValueError):
            async with savepoint(session):  # rolled back: its own event goes, the others stay
                await queue_event(session, Event("update", 3))
                raise ValueError("this part failed")
        with pytest.raises(ValueError):
            async with session.begin_nested():  # rolled back, nothing queued inside
                raise ValueError("this part failed too")
        await queue_event(session, Event("update", 4))
        assert await received(subscription) == []
    assert await received(subscription) == [1, 2, 4]


async def test_a_rollback_after_a_savepoint_sends_nothing(bus_and_sessionmaker):
    bus, sessionmaker = bus_and_sessionmaker
    subscription = bus.subscribe()
    with pytest.raises(RuntimeError):
        async with db.write_session(sessionmaker) as session:
            await queue_event(session, Event("update", 1))
            async with savepoint(session):
                await queue_event(session, Event("update", 2))
            raise RuntimeError("the request failed")
    assert await received(subscription) == []
    async with db.write_session(sessionmaker) as session:
        await queue_event(session, Event("update", 3))
    assert await received(subscription) == [3]
