"""Home timelines, fanned in at write time: one row per (reader, status shown).

Besides follows (`services.posting`), a post reaches the homes of the residents who follow one of its
hashtags (`tag_followers_who_see`), within who may see it (`models.audience.readers_clause`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ForeignKey, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .actor import Actor
from .audience import R_ORIGINAL, bound_readers_rule, reader_values
from .base import Base
from .categories import canonical
from .db import fast, insert_all
from .post import Post
from .tag_follow import TagFollow


class HomeEntry(Base):
    __tablename__ = "home_entries"

    owner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    # The post this row shows, or the boosted original: lets one reader see a post only once.
    shown_id: Mapped[int] = mapped_column(index=True)


async def add_to_homes(session: AsyncSession, post_id: int, shown_id: int, owner_ids: Iterable[int],
                       have_original: set[int] | None = None) -> None:
    """Put a status in these readers' home timelines, skipping readers who already have its original:
    read, or `have_original` when the caller knows them (the original is new in its transaction)."""
    owners = set(owner_ids)
    if not owners:
        return
    if shown_id != post_id:
        if have_original is None:
            have_original = set(await session.scalars(_have_original(), {"shown": shown_id, "owners": sorted(owners)}))
        owners -= have_original
    # a fast executemany: the ORM's bulk path costs more than the rows
    await insert_all(session, HomeEntry, [{"owner_id": o, "post_id": post_id, "shown_id": shown_id} for o in owners])


@functools.cache
def _have_original() -> Any:
    """Which of these readers already have the original (`shown`) in their home."""
    return fast(select(HomeEntry.owner_id).where(HomeEntry.shown_id == bindparam("shown"),
                                                 HomeEntry.owner_id.in_(bindparam("owners", expanding=True))))


async def remove_author_from_home(session: AsyncSession, owner_id: int, author_post_ids) -> None:
    """Drop an unfollowed account's statuses from a reader's home timeline (as Mastodon does)."""
    await session.execute(
        delete(HomeEntry).where(HomeEntry.owner_id == owner_id, HomeEntry.post_id.in_(author_post_ids)))


async def tag_followers_who_see(session: AsyncSession, post: Post, tag_names: Iterable[str]) -> list[int]:
    """The local residents following one of `tag_names` (synonyms count: following `#zoekertje` is
    following `annonce`) who may see `post` and do not have it in their home yet. Boosts are not
    fanned out this way (their original was). `post` must be flushed, with its mentions."""
    names = sorted({canonical(name)[:100] for name in tag_names if name})
    if not names or post.reblog_of_id is not None:
        return []
    statement = _tag_followers_statement(post.visibility, post.audience_id is not None)
    return list(await session.scalars(statement, {**reader_values(post), "names": names}))


@functools.lru_cache(maxsize=16)
def _tag_followers_statement(visibility: str, has_audience: bool) -> Any:
    have = select(HomeEntry.owner_id).where(HomeEntry.post_id == R_ORIGINAL)
    followers = select(TagFollow.actor_id).where(TagFollow.name.in_(bindparam("names", expanding=True)))
    return fast(select(Actor.id)
                .where(Actor.id.in_(followers), Actor.id.not_in(have), bound_readers_rule(visibility, has_audience)))
