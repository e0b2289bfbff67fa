"""Who may see what: DESIGN.md's visibility table as one query filter over `posts`.

The client API's timelines and status lookups, authorized fetch, and delivery's recipient expansion all
use this module; there is no second copy of a visibility rule. Every post row (boosts included) carries
its original's audience (`visibility`, `audience_id`, `origin_author_id`), so the same clause decides
for boosts, and a boost can never show a post to someone the original did not reach.

| visibility | who may see it (a local viewer) |
|---|---|
| public   | every resident, when the audience is one of our villages; for a partner's post, residents whose home village follows its village, and followers of the author or of the village |
| unlisted | members of the post's village (its audience) |
| private  | followers of the original author, and mentioned accounts |
| direct   | mentioned accounts |
The author always sees their own posts.

Blocks come before the table: a post whose author or original author blocked the viewer, or is blocked
by the viewer, is invisible to them (boosts included), whatever its visibility. Mutes are not part of
the rule (the muter may still open a muted account's status): timelines and notifications add
`~muted_clause(viewer_id)` themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from .actor import Actor
from .base import utcnow
from .db import fast
from .follow import ACCEPTED, Follow
from .mute_block import Block, Mute
from .post import DIRECT, PRIVATE, PUBLIC, UNLISTED, Mention, Post
from .village import Village


@dataclass(frozen=True)
class Viewer:
    """The reader: a local actor (a resident, usually) and their home village's Group actor. Either id
    may be a bind parameter, to build a statement once (`visible_clause`) and run it for any reader."""

    actor_id: Any
    village_actor_id: Any = None

    @property
    def anonymous(self) -> bool:
        return self.actor_id is None


ANONYMOUS = Viewer(None, None)


async def load_viewer(session: AsyncSession, actor_id: int | None) -> Viewer:
    """The reader `actor_id` with their home village's Group actor (ANONYMOUS for None)."""
    if actor_id is None:
        return ANONYMOUS
    return Viewer(actor_id, await session.scalar(_viewer_statement(), {"viewer": actor_id}))


@functools.cache
def _viewer_statement() -> Select[tuple[int]]:
    return fast(select(Village.actor_id).join(Actor, Actor.village_id == Village.id)
                .where(Actor.id == bindparam("viewer")))


def _followed_by(actor_id: int | None):
    return select(Follow.target_id).where(Follow.follower_id == actor_id, Follow.state == ACCEPTED)


def local_village_actors():
    return select(Village.actor_id)


def blocked_with(actor_ids: Iterable[int | None]) -> Select[tuple[int]]:
    """SELECT of the actors that block, or are blocked by, any of `actor_ids`."""
    ids = [i for i in set(actor_ids) if i is not None]
    return union(select(Block.target_id).where(Block.actor_id.in_(ids)),
                 select(Block.actor_id).where(Block.target_id.in_(ids)))


def not_blocked_clause(viewer_id: int) -> ColumnElement[bool]:
    """A WHERE clause on `Post`: false for rows whose author or original author blocks the viewer or is
    blocked by them (the block part of `visible_clause`)."""
    blocked = blocked_with([viewer_id])
    return and_(Post.author_id.not_in(blocked), Post.origin_author_id.not_in(blocked))


def active_mutes(viewer_id: Any, *, notifications: bool = False, now: Any = None) -> Select[tuple[int]]:
    """SELECT of the accounts `viewer_id` mutes at `now` (default: now; expired mutes do not count);
    with `notifications=True`, only the mutes that also hide notifications."""
    now = utcnow() if now is None else now
    query = select(Mute.target_id).where(
        Mute.actor_id == viewer_id, or_(Mute.expires_at.is_(None), Mute.expires_at > now))
    if notifications:
        query = query.where(Mute.notifications.is_(True))
    return query


def muted_clause(viewer_id: Any, *, now: Any = None) -> ColumnElement[bool]:
    """A WHERE clause on `Post` true for the rows the viewer's active mutes hide from their timelines:
    the muted account's statuses, boosts of them, and their boosts. Timelines add `~muted_clause(me)`.
    The ids (and `now`) may be bind parameters, for statements built once and run many times."""
    if viewer_id is None:
        return false()
    muted = active_mutes(viewer_id, now=now)
    return or_(Post.author_id.in_(muted), Post.origin_author_id.in_(muted))


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause on `Post` true exactly for the rows `viewer` may see."""
    if viewer.anonymous:
        return false()
    me = viewer.actor_id
    return and_(_table_clause(viewer), not_blocked_clause(me))


def _table_clause(viewer: Viewer) -> ColumnElement[bool]:
    """The visibility table itself (blocks aside)."""
    me = viewer.actor_id
    follows = _followed_by(me)
    original = func.coalesce(Post.reblog_of_id, Post.id)
    mentioned = exists(select(Mention.post_id).where(Mention.post_id == original, Mention.actor_id == me))
    public_audience = [Post.audience_id.in_(local_village_actors()), Post.audience_id.in_(follows)]
    if viewer.village_actor_id is not None:
        public_audience.append(Post.audience_id.in_(_followed_by(viewer.village_actor_id)))
    return or_(
        Post.origin_author_id == me,
        Post.author_id == me,
        and_(Post.visibility == PUBLIC, or_(*public_audience, Post.origin_author_id.in_(follows))),
        and_(Post.visibility == UNLISTED, Post.audience_id == viewer.village_actor_id)
        if viewer.village_actor_id is not None else false(),
        and_(Post.visibility == PRIVATE, or_(Post.origin_author_id.in_(follows), mentioned)),
        and_(Post.visibility == DIRECT, mentioned),
    )


async def can_see(session: AsyncSession, viewer: Viewer, post_id: int) -> bool:
    """Whether `viewer` may see the post (the rule of `visible_clause`)."""
    found = await session.scalar(select(Post.id).where(Post.id == post_id, visible_clause(viewer)))
    return found is not None


async def visible_ids(session: AsyncSession, viewer: Viewer, post_ids: list[int]) -> set[int]:
    if not post_ids:
        return set()
    rows = await session.scalars(select(Post.id).where(Post.id.in_(post_ids), visible_clause(viewer)))
    return set(rows)


def boostable(post: Post, booster_id: int) -> bool:
    """Residents boost public posts only; their own private posts too. Direct posts never."""
    if post.visibility == PUBLIC:
        return True
    return post.visibility == PRIVATE and post.author_id == booster_id


def readers_clause(post: Post) -> ColumnElement[bool]:
    """A WHERE clause on `Actor` true exactly for the local actors who may see `post`.

    The inverse of `visible_clause`, term by term (a test checks on the cast that both agree for every
    post and viewer): fan-out, notifications and mentions ask this instead of re-deciding who sees what.
    `post` must be flushed, with its mentions (they are read from the database).
    """
    return _readers_rule(post.visibility, post.reblog_of_id or post.id, post.author_id, post.origin_author_id,
                         post.audience_id)


def _readers_rule(visibility: str, original_id: Any, author_id: Any, origin_author_id: Any,
                  audience_id: Any) -> ColumnElement[bool]:
    """`readers_clause` of a post given by its parts, which may be values or bind parameters."""
    mentioned = Actor.id.in_(select(Mention.actor_id).where(Mention.post_id == original_id))
    follows_origin = Actor.id.in_(select(Follow.follower_id).where(
        Follow.target_id == origin_author_id, Follow.state == ACCEPTED))
    own = or_(Actor.id == author_id, Actor.id == origin_author_id)
    if visibility == PUBLIC:
        rule = or_(_public_audience_readers(audience_id), follows_origin)
    elif visibility == UNLISTED and audience_id is not None:
        rule = Actor.village_id.in_(select(Village.id).where(Village.actor_id == audience_id))
    elif visibility == PRIVATE:
        rule = or_(follows_origin, mentioned)
    elif visibility == DIRECT:
        rule = mentioned
    else:
        rule = false()
    blocked = blocked_with([author_id, origin_author_id])
    return and_(Actor.domain == "", or_(own, rule), Actor.id.not_in(blocked))


def _public_audience_readers(audience_id: Any) -> ColumnElement[bool]:
    """Who may read a public post of this village: everyone here when it is one of ours; otherwise its
    followers and the members of our villages that follow it."""
    if audience_id is None:
        return false()
    ours = exists(select(Village.id).where(Village.actor_id == audience_id))
    follows_it = Actor.id.in_(select(Follow.follower_id).where(
        Follow.target_id == audience_id, Follow.state == ACCEPTED))
    village_follows_it = Actor.village_id.in_(
        select(Village.id).join(Follow, Follow.follower_id == Village.actor_id)
        .where(Follow.target_id == audience_id, Follow.state == ACCEPTED))
    return or_(ours, follows_it, village_follows_it)


# Fan-out runs the readers rule several times per post: its statements are built once per kind of post
# with these parameters (`reader_values` gives their values), since building costs more than running.
R_ORIGINAL, R_AUTHOR, R_ORIGIN, R_AUDIENCE = (bindparam("r_original"), bindparam("r_author"),
                                              bindparam("r_origin"), bindparam("r_audience"))


def reader_values(post: Post) -> dict[str, Any]:
    return {"r_original": post.reblog_of_id or post.id, "r_author": post.author_id,
            "r_origin": post.origin_author_id, "r_audience": post.audience_id}


@functools.lru_cache(maxsize=16)
def bound_readers_rule(visibility: str, has_audience: bool) -> ColumnElement[bool]:
    """`readers_clause` for every post of this visibility (with an audience or not), on the parameters
    `reader_values` gives."""
    return _readers_rule(visibility, R_ORIGINAL, R_AUTHOR, R_ORIGIN, R_AUDIENCE if has_audience else None)


@functools.lru_cache(maxsize=32)
def _readers_statement(visibility: str, has_audience: bool, among: bool) -> Select[tuple[int]]:
    statement = select(Actor.id).where(bound_readers_rule(visibility, has_audience))
    return fast(statement.where(Actor.id.in_(bindparam("r_among", expanding=True))) if among else statement)


async def get_readers(session: AsyncSession, post: Post, among: Iterable[int] | None = None) -> set[int]:
    """The local actors (optionally only among `among`) who may see `post`."""
    values = reader_values(post)
    if among is not None:
        values["r_among"] = sorted(set(among))
        if not values["r_among"]:
            return set()
    statement = _readers_statement(post.visibility, post.audience_id is not None, among is not None)
    return set(await session.scalars(statement, values))


@functools.lru_cache(maxsize=32)
def followers_statement(visibility: str, has_audience: bool) -> Select[tuple[int, bool, bool]]:
    """`followers_who_see`'s statement, on the parameters of `reader_values` and `r_target`."""
    return fast(select(Follow.follower_id, Follow.show_reblogs, Follow.notify)
                .join(Actor, Actor.id == Follow.follower_id)
                .where(Follow.target_id == bindparam("r_target"), Follow.state == ACCEPTED,
                       bound_readers_rule(visibility, has_audience)))


async def followers_who_see(session: AsyncSession, post: Post, target_id: int) -> list[Any]:
    """The local accepted followers of `target_id` who may see `post`: rows of (follower_id,
    show_reblogs, notify)."""
    statement = followers_statement(post.visibility, post.audience_id is not None)
    return list(await session.execute(statement, {**reader_values(post), "r_target": target_id}))
