"""Small helpers the handlers share: finding rows by URI and moving counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.post import Post


async def get_actor(session: AsyncSession, uri: str | None) -> Actor | None:
    """A known actor by uri."""
    if not uri:
        return None
    return await session.scalar(select(Actor).where(Actor.uri == uri))


async def get_post(session: AsyncSession, uri: str | None) -> Post | None:
    """A known post by uri."""
    if not uri:
        return None
    return await session.scalar(select(Post).where(Post.uri == uri))


async def shift(session: AsyncSession, model: Any, row_id: int, column: str, step: int) -> None:
    """Add `step` to a counter column, never below zero."""
    col = getattr(model, column)
    value = col + step if step > 0 else _floor(col + step)
    await session.execute(update(model).where(model.id == row_id).values({column: value}))


def _floor(expression: Any) -> Any:
    from sqlalchemy import case

    return case((expression < 0, 0), else_=expression)
