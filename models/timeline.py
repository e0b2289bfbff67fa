"""Home timelines, fanned in at write time: one row per (reader, status shown).

Besides follows (`services.posting`), a post reaches the homes of the residents who follow one of its
hashtags (`tag_followers_who_see`), within who may see it (`models.audience.readers_clause`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, bindparam, delete, exists, func, insert, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .actor import Actor
from .audience import R_ORIGINAL, bound_readers_rule, followers_statement, followers_who_see, reader_values
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


async def followers_into_homes(session: AsyncSession, post: Post, target_id: int, also: Iterable[int] = (),
                               have_original: set[int] | None = None) -> list[Any]:
    """`followers_who_see(post, target_id)`, and `post` put in the homes of those followers (of those who
    show boosts, for a boost) and of `also`, as `add_to_homes` does. On PostgreSQL one statement (a
    round trip less for every post, boost and received note)."""
    boost = post.reblog_of_id is not None
    shown_id = post.reblog_of_id if boost else post.id
    if session.bind.dialect.name != "postgresql":
        followers = await followers_who_see(session, post, target_id)
        owners = {*also, *(row.follower_id for row in followers if row.show_reblogs or not boost)}
        await add_to_homes(session, post.id, shown_id, owners, have_original)
        return followers
    # the readers who have a boost's original are asked in the statement (`have_original` or not)
    statement = _followers_into_homes(post.visibility, post.audience_id is not None, boost)
    return list(await session.execute(statement, {**reader_values(post), "r_target": target_id, "h_post": post.id,
                                                  "h_shown": shown_id, "h_also": sorted(set(also))}))


@functools.lru_cache(maxsize=32)
def _followers_into_homes(visibility: str, has_audience: bool, boost: bool) -> Any:
    """PostgreSQL: WITH followers AS (`followers_statement`), homes AS (INSERT INTO home_entries the
    followers (showing boosts) and `h_also`, without the readers who have the original) SELECT the
    followers."""
    from sqlalchemy.dialects.postgresql import ARRAY

    followers = followers_statement(visibility, has_audience).cte("followers")
    reached = select(followers.c.follower_id.label("owner_id"))
    if boost:
        reached = reached.where(followers.c.show_reblogs)
    owners = union(reached, select(func.unnest(bindparam("h_also", type_=ARRAY(BigInteger))).label("owner_id"))
                   ).subquery("owners")
    rows = select(owners.c.owner_id, bindparam("h_post", type_=BigInteger), bindparam("h_shown", type_=BigInteger))
    if boost:
        rows = rows.where(~exists().where(HomeEntry.owner_id == owners.c.owner_id,
                                          HomeEntry.shown_id == bindparam("h_shown", type_=BigInteger)))
    homes = insert(HomeEntry).from_select(["owner_id", "post_id", "shown_id"], rows).cte("homes")
    return fast(select(followers.c.follower_id, followers.c.show_reblogs, followers.c.notify).add_cte(homes),
                in_transaction=True)


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
