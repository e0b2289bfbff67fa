"""Who on a partner instance may fetch one of our posts (authorized fetch).

Partners fetch with their instance actor, so the signer's HOST decides, not the signer alone: a post
may be served to a partner when someone on that host is in the post's audience.

| visibility | served to a signer on host H when |
|---|---|
| public | an actor on H follows (accepted) the post's village or its author; or the post's audience is a
  group on another host (a reply in a partner's village: any partner may fetch it, as the origin of
  such objects answers every partner) |
| private | an actor on H follows (accepted) the author |
| direct | an actor on H is mentioned |
| unlisted | never |
"""

from __future__ import annotations

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from .actor import Actor
from .follow import ACCEPTED, Follow
from .post import DIRECT, PRIVATE, PUBLIC, Mention, Post


async def _followed_from_host(session: AsyncSession, host: str, target_ids: list[int]) -> bool:
    query = select(exists().where(
        Follow.target_id.in_(target_ids), Follow.state == ACCEPTED,
        Follow.follower_id == Actor.id, Actor.domain == host))
    return bool(await session.scalar(query))


async def _mentioned_on_host(session: AsyncSession, host: str, post_id: int) -> bool:
    query = select(exists().where(and_(Mention.post_id == post_id, Mention.actor_id == Actor.id,
                                       Actor.domain == host)))
    return bool(await session.scalar(query))


async def _audience_elsewhere(session: AsyncSession, audience_id: int | None) -> bool:
    if audience_id is None:
        return False
    domain = await session.scalar(select(Actor.domain).where(Actor.id == audience_id))
    return bool(domain)


async def remote_may_see(session: AsyncSession, post: Post, signer_actor: Actor) -> bool:
    """True when `signer_actor`'s instance may be served `post` (see the module table).

    Local signers are not this function's business: it answers False for them.
    """
    host = signer_actor.domain
    if not host:
        return False
    author_id = post.origin_author_id or post.author_id
    if post.visibility == PUBLIC:
        targets = [author_id] + ([post.audience_id] if post.audience_id is not None else [])
        return await _followed_from_host(session, host, targets) or await _audience_elsewhere(
            session, post.audience_id)
    if post.visibility == PRIVATE:
        return await _followed_from_host(session, host, [author_id])
    if post.visibility == DIRECT:
        mention_post = post.reblog_of_id if post.reblog and post.reblog_of_id else post.id
        return await _mentioned_on_host(session, host, mention_post)
    return False
