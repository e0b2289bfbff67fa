"""Our actors' keys, made at their first federation use: once, even when several requests need them at
the same moment (a resident's first posts sent together)."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from voisinage.federation import local_keys
from voisinage.federation.keys import load_private
from voisinage.models.actor import Actor


async def test_first_uses_at_once_make_one_key_pair(rig, monkeypatch):
    if rig.sessionmaker.kw["bind"].dialect.name != "postgresql":
        pytest.skip("concurrent write transactions: PostgreSQL (SQLite's writers take turns)")
    made: list[int] = []
    real = local_keys.generate_rsa

    def counted() -> tuple[str, str]:
        made.append(1)
        return real()

    monkeypatch.setattr(local_keys, "generate_rsa", counted)
    actor_id = rig["alder"].actor_id

    async def first_use() -> tuple[str, str]:
        async with rig.sessionmaker() as session:
            actor = await session.get(Actor, actor_id)
            assert actor.private_key_pem is None  # read before any of them committed
            await asyncio.sleep(0.05)  # all three hold the actor without keys
            await local_keys.ensure_local_keys(session, actor)
            await session.commit()
            return actor.public_key_pem, actor.ed25519_public_multikey

    used = await asyncio.gather(first_use(), first_use(), first_use())
    assert len(made) == 1 and len(set(used)) == 1
    async with rig.sessionmaker() as session:
        stored = (await session.execute(select(Actor.public_key_pem, Actor.private_key_pem,
                                               Actor.ed25519_public_multikey).where(Actor.id == actor_id))).one()
    assert (stored.public_key_pem, stored.ed25519_public_multikey) == used[0]
    assert load_private(stored.private_key_pem).key_size == 2048


async def test_a_failed_generation_is_tried_again(rig, monkeypatch):
    real, calls = local_keys.generate_rsa, []

    def failing_once() -> tuple[str, str]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no entropy today")
        return real()

    monkeypatch.setattr(local_keys, "generate_rsa", failing_once)
    async with rig.sessionmaker() as session:
        actor = await session.get(Actor, rig["birch"].actor_id)
        with pytest.raises(OSError):
            await local_keys.ensure_local_keys(session, actor)
        await local_keys.ensure_local_keys(session, actor)
        await session.commit()
    assert len(calls) == 2 and actor.private_key_pem and actor.public_key_pem


async def test_the_keys_another_process_stored_first_are_kept_and_used(rig):
    """Another process gave the actor keys (its own) after this transaction read it without: they are
    kept, and this transaction signs with them, rather than replacing them with the ones it made."""
    if rig.sessionmaker.kw["bind"].dialect.name != "postgresql":
        pytest.skip("concurrent write transactions: PostgreSQL (SQLite's writers take turns)")
    actor_id = rig["alder"].actor_id
    private, public = local_keys.generate_rsa()
    ed_private, ed_public = local_keys.generate_ed25519()
    theirs = {"private_key_pem": private, "public_key_pem": public, "ed25519_private_pem": ed_private,
              "ed25519_public_multikey": ed_public, "key_id": "https://a.test/users/alder#main-key"}
    async with rig.sessionmaker() as session:
        actor = await session.get(Actor, actor_id)
        assert actor.private_key_pem is None
        async with rig.sessionmaker() as other:
            await other.execute(update(Actor).where(Actor.id == actor_id).values(theirs))
            await other.commit()
        await local_keys.ensure_local_keys(session, actor)
        used = {name: getattr(actor, name) for name in theirs}
        await session.commit()
    assert used == theirs
    async with rig.sessionmaker() as session:
        stored = (await session.execute(select(*(getattr(Actor, name) for name in theirs))
                                        .where(Actor.id == actor_id))).one()
    assert tuple(stored) == tuple(theirs.values())


POSTS = 40


async def test_a_residents_first_posts_sent_together_all_land(pair):
    """PostgreSQL: a resident's first posts, eight at a time, announced to a partner. Each locks the
    author's row then the village's (their keys, then their counters): the counters once took both rows
    in one UPDATE, locked in whatever order PostgreSQL found them, and posts deadlocked."""
    from .test_exchange import follow

    a = pair.a
    if a.sessionmaker.kw["bind"].dialect.name != "postgresql":
        pytest.skip("concurrent write transactions: PostgreSQL (SQLite's writers take turns)")
    await follow(pair.b, "cedar", "north@a.test")
    await pair.drain()
    at_once = asyncio.Semaphore(8)

    async def post(n: int) -> tuple[int, Any]:
        async with at_once:
            return await a.api("alder").post("/api/v1/statuses", json={"status": f"Annonce {n}"})

    answers = await asyncio.gather(*(post(n) for n in range(POSTS)))
    assert [code for code, _ in answers] == [200] * POSTS, [body for code, body in answers if code != 200]
    async with a.sessionmaker() as session:
        counts = dict((await session.execute(select(Actor.id, Actor.statuses_count).where(
            Actor.id.in_([a["alder"].actor_id, a.village_ids["north"]])))).all())
    assert counts == {a["alder"].actor_id: POSTS, a.village_ids["north"]: POSTS}
