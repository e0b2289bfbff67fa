"""`db.load_fast` and `db.get_fast`: a row of a fast statement becomes an instance of the session, the
same as the ORM's loading gives (values, identity, changes saved), at a fraction of its cost."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from voisinage.models import db
from voisinage.models.actor import ACTOR_ROW_BY_URI, Actor

from ..rig.statements import recorded_statements

URI = "https://partner.test/users/rowan"


@pytest.fixture
async def sessionmaker(db_url: str) -> Any:
    engine, made = await db.open_database(db_url)
    async with db.write_session(made) as session:
        session.add(Actor(username="rowan", domain="partner.test", uri=URI, inbox_uri=f"{URI}/inbox",
                          url="https://partner.test/@rowan", display_name="Rowan", note="<p>Bonjour</p>",
                          fields=[{"name": "Village", "value": "Nord"}], bot=True, locked=False,
                          fetched_at=dt.datetime(2026, 11, 26, 20, 30, 15, 123456, tzinfo=dt.UTC)))
    yield made
    await db.close_database(engine)


def _values(actor: Actor) -> dict[str, Any]:
    return {column.key: getattr(actor, column.key) for column in Actor.__table__.c}


async def test_a_fast_loaded_actor_has_the_values_the_orm_loads(sessionmaker):
    async with db.write_session(sessionmaker) as session:
        by_orm = _values(await session.scalar(select(Actor).where(Actor.uri == URI)))
    async with db.write_session(sessionmaker) as session:
        loaded = await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": URI})
        assert _values(loaded) == by_orm
        assert loaded.fields == [{"name": "Village", "value": "Nord"}] and loaded.fetched_at.tzinfo is not None
        assert await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": f"{URI}-nobody"}) is None
        assert await db.get_fast(session, Actor, -1) is None


async def test_the_instance_belongs_to_the_session_and_its_changes_are_saved(sessionmaker):
    async with db.write_session(sessionmaker) as session:
        actor = await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": URI})
        assert actor in session.sync_session and not session.sync_session.is_modified(actor)
        assert await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": URI}) is actor
        with recorded_statements(sessionmaker.kw["bind"]) as seen:
            assert await db.get_fast(session, Actor, actor.id) is actor  # known: no query
        assert seen == []
        actor.display_name = "Rowan du Nord"
    async with db.write_session(sessionmaker) as session:
        assert (await db.get_fast(session, Actor, actor.id)).display_name == "Rowan du Nord"
        orm = await session.get(Actor, actor.id)
        assert await db.get_fast(session, Actor, actor.id) is orm  # the ORM's instance, as the ORM would


async def test_an_expired_instance_is_loaded_afresh(sessionmaker):
    async with db.write_session(sessionmaker) as session:
        actor = await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": URI})
        actor_id = actor.id
        await session.execute(update(Actor).where(Actor.id == actor_id).values(display_name="Changed"))
        session.expire_all()  # a lazy load would fail on PostgreSQL's async session
        again = await db.get_fast(session, Actor, actor_id)
        assert again is actor and actor.display_name == "Changed"
        session.expire_all()
        assert (await db.load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": URI})).display_name == "Changed"
