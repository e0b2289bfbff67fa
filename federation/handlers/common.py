"""Small helpers the handlers share: finding rows by URI."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import ACTOR_ROW_BY_URI, Actor
from voisinage.models.db import load_fast
from voisinage.models.post import Post


async def get_actor(session: AsyncSession, uri: str | None) -> Actor | None:
    """A known actor by uri."""
    if not uri:
        return None
    return await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": uri})


async def get_post(session: AsyncSession, uri: str | None) -> Post | None:
    """A known post by uri."""
    if not uri:
        return None
    return await session.scalar(_POST_BY_URI, {"uri": uri})


_POST_BY_URI = select(Post).where(Post.uri == bindparam("uri"))
