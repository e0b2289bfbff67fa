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
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .actor import Actor
from .follow import ACCEPTED, Follow
from .post import DIRECT, PRIVATE, PUBLIC, UNLISTED, Mention, Post
from .village import Village


@dataclass(frozen=True)
class Viewer:
    """The reader: a local actor (a resident, usually) and their home village's Group actor."""

    actor_id: int | None
    village_actor_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.actor_id is None


ANONYMOUS = Viewer(None, None)


async def load_viewer(session: AsyncSession, actor_id: int | None) -> Viewer:
    if actor_id is None:
        return ANONYMOUS
    village_actor = await session.scalar(
        select(Village.actor_id).join(Actor, Actor.village_id == Village.id).where(Actor.id == actor_id))
    return Viewer(actor_id, village_actor)


def _followed_by(actor_id: int | None):
    return select(Follow.target_id).where(Follow.follower_id == actor_id, Follow.state == ACCEPTED)


def local_village_actors():
    return select(Village.actor_id)


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause on `Post` true exactly for the rows `viewer` may see."""
    if viewer.anonymous:
        return false()
    me = viewer.actor_id
    follows = _followed_by(me)
    original = func.coalesce(Post.reblog_of_id, Post.id)
    mentioned = exists(select(Mention.post_id).where(Mention.post_id == original, Mention.actor_id == me))
    public_audiences = local_village_actors().union(follows)
    if viewer.village_actor_id is not None:
        public_audiences = public_audiences.union(_followed_by(viewer.village_actor_id))
    return or_(
        Post.origin_author_id == me,
        Post.author_id == me,
        and_(Post.visibility == PUBLIC,
             or_(Post.audience_id.in_(public_audiences), Post.origin_author_id.in_(follows))),
        and_(Post.visibility == UNLISTED, Post.audience_id == viewer.village_actor_id)
        if viewer.village_actor_id is not None else false(),
        and_(Post.visibility == PRIVATE, or_(Post.origin_author_id.in_(follows), mentioned)),
        and_(Post.visibility == DIRECT, mentioned),
    )


async def can_see(session: AsyncSession, viewer: Viewer, post_id: int) -> bool:
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
