"""The seam from local actions to federation: posting and follows call these inside their transaction.

The app binds its FederationContext to the sessionmaker (session.info["federation"]), as the live
event bus is bound; sessions without one (the CLI, some tests) simply do not federate. Each call
writes outbox rows in the caller's transaction, so a post and its deliveries commit together.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.federation import outbox
from voisinage.federation.context import FederationContext
from voisinage.federation.outbox import NewPost
from voisinage.models.actor import Actor
from voisinage.models.db import get_fast
from voisinage.models.follow import Follow
from voisinage.models.interaction import Favourite
from voisinage.models.poll import Poll
from voisinage.models.post import Post


def federation_of(session: AsyncSession) -> FederationContext | None:
    return session.info.get("federation")


async def post_created(session: AsyncSession, post: Post, new: NewPost | None = None) -> None:
    """`new`: what posting knows of the post (its relations, its village's announce), not read back."""
    if (ctx := federation_of(session)) is not None:
        await outbox.publish_post(session, ctx, post, new)


async def post_updated(session: AsyncSession, post: Post) -> None:
    if (ctx := federation_of(session)) is not None:
        await outbox.publish_update(session, ctx, post)


async def post_deleted(session: AsyncSession, post: Post) -> None:
    """Call before the rows go: the recipients are computed from mentions and follows."""
    if (ctx := federation_of(session)) is not None and post.reblog_of_id is None and post.local:
        await outbox.publish_delete(session, ctx, post)


async def boosted(session: AsyncSession, boost: Post) -> None:
    """A resident boosted a post: an Announce where the original's audience allows (public posts only)."""
    if (ctx := federation_of(session)) is not None:
        await outbox.publish_boost(session, ctx, boost)


async def unboosting(session: AsyncSession, boost: Post) -> None:
    """Call before a resident's boost row is deleted: Undo{Announce} to where the Announce went."""
    if (ctx := federation_of(session)) is not None:
        await outbox.publish_undo_boost(session, ctx, boost)


async def profile_updated(session: AsyncSession, actor: Actor) -> None:
    """A local actor's profile changed: Update of its document to the instances that show it."""
    if (ctx := federation_of(session)) is not None:
        await outbox.publish_actor_update(session, ctx, actor)


async def favourited(session: AsyncSession, actor_id: int, post_id: int) -> None:
    if (ctx := federation_of(session)) is not None:
        favourite = await _favourite(session, actor_id, post_id)
        if favourite is not None:
            await outbox.publish_like(session, ctx, favourite)


async def unfavouriting(session: AsyncSession, actor_id: int, post_id: int) -> None:
    """Call before the Favourite row is deleted."""
    if (ctx := federation_of(session)) is not None:
        favourite = await _favourite(session, actor_id, post_id)
        if favourite is not None:
            await outbox.publish_undo_like(session, ctx, favourite)


async def _favourite(session: AsyncSession, actor_id: int, post_id: int) -> Favourite | None:
    return await session.scalar(select(Favourite).where(Favourite.actor_id == actor_id,
                                                        Favourite.post_id == post_id))


async def follow_created(session: AsyncSession, follow: Follow, target: Actor) -> None:
    if (ctx := federation_of(session)) is not None and not target.local:
        await outbox.publish_follow(session, ctx, follow)


async def follow_removing(session: AsyncSession, follow: Follow) -> None:
    """Call before the Follow row is deleted: Undo to a remote target, Reject to a remote follower."""
    if (ctx := federation_of(session)) is None:
        return
    follower = await get_fast(session, Actor, follow.follower_id)
    target = await get_fast(session, Actor, follow.target_id)
    if target is not None and not target.local:
        await outbox.publish_undo_follow(session, ctx, follow)
    elif follower is not None and not follower.local:
        await outbox.publish_reject(session, ctx, follow)


async def follow_accepted(session: AsyncSession, follow: Follow, follower: Actor) -> None:
    if (ctx := federation_of(session)) is not None and not follower.local:
        await outbox.publish_accept(session, ctx, follow)


async def resolve_account(ctx: FederationContext | None, session: AsyncSession, handle: str) -> Actor | None:
    """The account a handle names, looked up on a partner instance if we do not know it yet (WebFinger,
    then a signed fetch); None when it cannot be found or its instance is not a partner. The caller
    commits (the remote account is stored). Deliberately not a write transaction while fetching: on
    SQLite that would hold the write lock during a network round trip."""
    from voisinage.federation.actors import ApParseError, NotPartner, UnknownActor, parse_handle, resolve_handle
    from voisinage.federation.transport import FetchError

    try:
        _, host = parse_handle(handle)
    except ValueError:
        return None
    if ctx is None or host is None:
        return None
    try:
        return await resolve_handle(ctx, session, handle)
    except (ValueError, UnknownActor, NotPartner, FetchError, ApParseError):
        return None


async def poll_voted(session: AsyncSession, poll: Poll, voter_id: int) -> None:
    """A resident voted in a remote poll (their PollVote rows are written): send the vote to its author."""
    voter = await get_fast(session, Actor, voter_id)
    if (ctx := federation_of(session)) is not None and voter is not None:
        await outbox.publish_vote(session, ctx, poll, voter)


async def poll_changed(session: AsyncSession, poll: Poll) -> None:
    """A local poll got a vote or closed: Update{Question} with its counts to where the post went."""
    if (ctx := federation_of(session)) is not None and not poll.remote:
        post = await session.get(Post, poll.post_id)
        if post is not None and post.local:
            await outbox.publish_update(session, ctx, post, poll=True)
