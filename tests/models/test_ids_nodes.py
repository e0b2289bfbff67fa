"""Id nodes: no two live processes hold the same node; a dead or stopped process's node comes back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from voisinage.models import db, ids
from voisinage.models.base import utcnow
from voisinage.models.meta import IdNode


async def _open(url: str):
    return await db.open_database(url)


async def test_live_processes_never_share_a_node_and_a_stopped_one_gives_its_node_back(db_url):
    opened = [await _open(db_url) for _ in range(3)]
    try:
        rows = {}
        async with opened[0][1]() as session:
            for row in await session.scalars(select(IdNode).where(IdNode.seen_at.is_not(None))):
                rows[row.id] = row.node
        assert len(set(rows.values())) == len(rows) >= 3
        # the first process stops cleanly: its node is free for the next one
        first_row = opened[0][1].kw["info"][db.NODE_ROW]
        async with db.keeping_node(opened[0][1]):
            pass
        async with opened[1][1]() as session:
            stopped = await session.get(IdNode, first_row)
            assert stopped.seen_at is None
        fourth = await _open(db_url)
        opened.append(fourth)
        assert ids._generator.node == stopped.node
    finally:
        for engine, _ in opened:
            await engine.dispose()


async def test_a_node_unseen_for_longer_than_its_ttl_is_taken_again_and_all_held_is_an_error(db_url):
    engine, sessionmaker = await _open(db_url)
    try:
        mine = sessionmaker.kw["info"][db.NODE_ROW]
        async with db.write_session(sessionmaker) as session:
            node = (await session.get(IdNode, mine)).node
            # the process died long ago (kill -9: no release), and every other node is held by live ones
            await session.execute(update(IdNode).where(IdNode.id == mine)
                                  .values(seen_at=utcnow() - db.NODE_TTL - dt.timedelta(seconds=1)))
            now = utcnow()
            held = set(await session.scalars(select(IdNode.node).where(IdNode.seen_at >= now - db.NODE_TTL)))
            session.add_all(IdNode(node=n, seen_at=now) for n in range(db.NODES) if n != node and n not in held)
        assert await db.claim_node(sessionmaker) and ids._generator.node == node
        try:
            await db.claim_node(sessionmaker)
        except RuntimeError as exc:
            assert "id nodes" in str(exc)
        else:
            raise AssertionError("a 257th live process got a node")
        async with sessionmaker() as session:
            live = list(await session.scalars(select(IdNode.node).where(IdNode.seen_at >= utcnow() - db.NODE_TTL)))
        assert sorted(live) == list(range(db.NODES))  # the refused claim stored nothing
    finally:
        await engine.dispose()


async def test_the_app_holds_its_node_while_it_runs_and_gives_it_back_at_stop(aiohttp_client, db_url, tmp_path):
    from voisinage.server.app import create_app
    from voisinage.server.keys import SESSIONMAKER

    from ..conftest import make_settings

    client = await aiohttp_client(create_app(make_settings(db_url, tmp_path)))
    sessionmaker = client.app[SESSIONMAKER]
    row_id = sessionmaker.kw["info"][db.NODE_ROW]
    async with sessionmaker() as session:
        assert (await session.get(IdNode, row_id)).seen_at is not None
    await client.close()
    async with sessionmaker() as session:
        assert (await session.get(IdNode, row_id)).seen_at is None
