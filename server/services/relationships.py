"""Follows between actors: follow, accept, unfollow, with counters, notifications and home timelines.

The client API calls these for residents; federation's Follow/Accept/Undo handlers are meant to call the
same functions, so that a follow has one set of rules whoever causes it. The module only imports
`models`, so it can move below `server/` if federation needs it there.

Rules (DESIGN.md):
- nobody follows themselves;
- a village of this instance accepts follows at once (its own members, residents of other villages, and
  the partner actors that reach it at all, as the admin vouches for partners);
- a resident who locked their account approves each follower (a pending Follow and a `follow_request`
  notification); other local residents accept at once (a `follow` notification);
- a follow of a remote actor stays pending until its Accept arrives (federation);
- nobody follows across a block, either way; a block removes the follows both ways, and each other's
  statuses from both home timelines (the visibility rule hides the rest);
- a mute only hides (timelines, and notifications when asked); it may expire.
Counters (`followers_count`, `following_count`) count accepted follows only and are updated in SQL,
so concurrent follows cannot lose an increment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import APPLICATION, GROUP, PERSON, Actor
from voisinage.models.audience import load_viewer, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.counters import add_to_counter
from voisinage.models.db import get_fast
from voisinage.models.follow import ACCEPTED, PENDING, Follow
from voisinage.models.ids import new_id
from voisinage.models.mute_block import Block, Mute
from voisinage.models.notification import Notification, notify
from voisinage.models.post import Post
from voisinage.models.timeline import HomeEntry, add_to_homes, remove_author_from_home

from . import federate

BACKFILL_LIMIT = 40


class FollowNotAllowed(Exception):
    """The follow cannot be made (following oneself, or the instance actor)."""


@dataclass(frozen=True)
class FollowResult:
    follow: Follow
    created: bool  # False when the follow existed and only its options changed


def initial_state(target: Actor) -> str:
    """Whether a new follow of `target` is accepted at once or waits for approval."""
    if not target.local:
        return PENDING  # the remote server answers with Accept (federation)
    if target.kind == GROUP:
        return ACCEPTED  # DESIGN: villages of this instance accept follows at once
    return PENDING if target.locked else ACCEPTED


async def get_follow(session: AsyncSession, follower_id: int, target_id: int) -> Follow | None:
    return await session.scalar(
        select(Follow).where(Follow.follower_id == follower_id, Follow.target_id == target_id))


async def create_follow(session: AsyncSession, follower: Actor, target: Actor, *,
                        reblogs: bool | None = None, notify_posts: bool | None = None,
                        uri: str | None = None) -> FollowResult:
    """Follow `target` (or change the options of an existing follow: `None` keeps an option as is)."""
    if follower.id == target.id or target.kind == APPLICATION:
        raise FollowNotAllowed("This action is not allowed")
    if await is_blocked_between(session, follower.id, target.id):
        raise FollowNotAllowed("This action is not allowed")
    existing = await get_follow(session, follower.id, target.id)
    if existing is not None:
        if reblogs is not None:
            existing.show_reblogs = reblogs
        if notify_posts is not None:
            existing.notify = notify_posts
        await session.flush()
        return FollowResult(existing, created=False)
    follow = Follow(id=new_id(), follower_id=follower.id, target_id=target.id, state=PENDING, uri=uri,
                    show_reblogs=True if reblogs is None else reblogs,
                    notify=False if notify_posts is None else notify_posts)
    session.add(follow)
    await session.flush()
    await federate.follow_created(session, follow, target)
    if initial_state(target) == ACCEPTED:
        await accept_follow(session, follow, follower, target)
        if target.local and target.kind == PERSON:
            await notify(session, target.id, "follow", follower.id)
    elif target.local and target.kind == PERSON:
        await notify(session, target.id, "follow_request", follower.id)
    return FollowResult(follow, created=True)


async def accept_follow(session: AsyncSession, follow: Follow, follower: Actor, target: Actor) -> None:
    """Make a pending follow accepted: counters, the follower's home backfill; the request's
    notification goes, as the request is answered (Mastodon destroys it with the FollowRequest)."""
    if follow.state == ACCEPTED:
        return
    follow.state = ACCEPTED
    await session.flush()
    await _shift_counters(session, follower.id, target.id, +1)
    await session.execute(delete(Notification).where(
        Notification.recipient_id == target.id, Notification.from_actor_id == follower.id,
        Notification.kind == "follow_request"))
    if follower.local:
        await backfill_home(session, follower.id, target.id, show_reblogs=follow.show_reblogs)


async def remove_follow(session: AsyncSession, follower_id: int, target_id: int) -> bool:
    """Unfollow (or withdraw a request): the row, the counters, the target's rows in the follower's home.

    Returns False when there was nothing to remove.
    """
    follow = await get_follow(session, follower_id, target_id)
    if follow is None:
        return False
    was_accepted = follow.state == ACCEPTED
    await federate.follow_removing(session, follow)
    await session.delete(follow)
    await session.flush()
    if was_accepted:
        await _shift_counters(session, follower_id, target_id, -1)
        await remove_author_from_home(session, follower_id,
                                      select(Post.id).where(Post.author_id == target_id))
    else:
        await session.execute(delete(Notification).where(
            Notification.recipient_id == target_id, Notification.from_actor_id == follower_id,
            Notification.kind == "follow_request"))
    return True


async def _shift_counters(session: AsyncSession, follower_id: int, target_id: int, step: int) -> None:
    await add_to_counter(session, Actor, follower_id, "following_count", step)
    await add_to_counter(session, Actor, target_id, "followers_count", step)


async def backfill_home(session: AsyncSession, owner_id: int, author_id: int, *,
                        show_reblogs: bool = True, limit: int = BACKFILL_LIMIT) -> int:
    """Put the author's latest rows the owner may see into the owner's home timeline, as Mastodon does
    on a follow. Rows whose post (or boosted original) the owner already has are skipped.
    Returns how many rows were added.
    """
    viewer = await load_viewer(session, owner_id)
    followed = select(Follow.target_id).where(Follow.follower_id == owner_id, Follow.state == ACCEPTED)
    shown = func.coalesce(Post.reblog_of_id, Post.id)
    already = select(HomeEntry.shown_id).where(HomeEntry.owner_id == owner_id)
    query = (select(Post.id, shown.label("shown_id"))
             .where(Post.author_id == author_id, visible_clause(viewer), shown.not_in(already),
                    # replies to people the owner does not follow stay out of home (as Mastodon)
                    or_(Post.in_reply_to_account_id.is_(None),
                        Post.in_reply_to_account_id.in_([author_id, owner_id]),
                        Post.in_reply_to_account_id.in_(followed)))
             .order_by(Post.id.desc()).limit(limit))
    if not show_reblogs:
        query = query.where(Post.reblog_of_id.is_(None))
    seen: set[int] = set()
    added = 0
    for post_id, shown_id in (await session.execute(query)).all():
        if shown_id in seen:
            continue
        seen.add(shown_id)
        await add_to_homes(session, post_id, shown_id, [owner_id])
        added += 1
    return added


async def count_follow_requests(session: AsyncSession, target_id: int) -> int:
    """Pending follows waiting for `target_id`'s approval."""
    return int(await session.scalar(
        select(func.count()).select_from(Follow)
        .where(Follow.target_id == target_id, Follow.state == PENDING)) or 0)


# -- follow requests -------------------------------------------------------------------------------

async def get_pending(session: AsyncSession, follower_id: int, target_id: int) -> Follow | None:
    """The pending follow of `target_id` by `follower_id`, if any."""
    return await session.scalar(select(Follow).where(
        Follow.follower_id == follower_id, Follow.target_id == target_id, Follow.state == PENDING))


async def authorize_request(session: AsyncSession, target: Actor, follower_id: int) -> bool:
    """Accept a pending follow of `target` (no new notification, as Mastodon); False if none waits."""
    follow = await get_pending(session, follower_id, target.id)
    follower = await get_fast(session, Actor, follower_id)
    if follow is None or follower is None:
        return False
    await accept_follow(session, follow, follower, target)
    await federate.follow_accepted(session, follow, follower)
    return True


async def reject_request(session: AsyncSession, target_id: int, follower_id: int) -> bool:
    """Refuse a pending follow of `target_id`: the request and its notification go."""
    if await get_pending(session, follower_id, target_id) is None:
        return False
    return await remove_follow(session, follower_id, target_id)


async def accept_all_requests(session: AsyncSession, target: Actor) -> int:
    """Accept every pending follow of `target` (an account that unlocks, as Mastodon does)."""
    pending = list(await session.scalars(
        select(Follow).where(Follow.target_id == target.id, Follow.state == PENDING).order_by(Follow.id)))
    for follow in pending:
        follower = await get_fast(session, Actor, follow.follower_id)
        if follower is not None:
            await accept_follow(session, follow, follower, target)
            await federate.follow_accepted(session, follow, follower)
    return len(pending)


# -- blocks ----------------------------------------------------------------------------------------

async def is_blocked_between(session: AsyncSession, a: int, b: int) -> bool:
    """Whether `a` blocks `b` or `b` blocks `a`."""
    found = await session.scalar(select(Block.id).where(or_(
        and_(Block.actor_id == a, Block.target_id == b), and_(Block.actor_id == b, Block.target_id == a))))
    return found is not None


async def create_block(session: AsyncSession, blocker: Actor, target: Actor) -> Block:
    """Block `target` (idempotent): follows both ways removed (counters follow), each other's statuses
    out of both home timelines, pending requests and their notifications gone."""
    if blocker.id == target.id or target.kind == APPLICATION:
        raise FollowNotAllowed("This action is not allowed")
    block = await session.scalar(select(Block).where(Block.actor_id == blocker.id, Block.target_id == target.id))
    if block is None:
        block_id = new_id()
        block = Block(id=block_id, actor_id=blocker.id, target_id=target.id,
                      uri=f"{blocker.uri}#blocks/{block_id}" if blocker.local else None)
        session.add(block)
        await session.flush()
    await remove_follow(session, blocker.id, target.id)
    await remove_follow(session, target.id, blocker.id)
    for owner, other in ((blocker.id, target.id), (target.id, blocker.id)):
        await session.execute(delete(HomeEntry).where(HomeEntry.owner_id == owner, HomeEntry.post_id.in_(
            select(Post.id).where(or_(Post.author_id == other, Post.origin_author_id == other)))))
    return block


async def remove_block(session: AsyncSession, blocker_id: int, target_id: int) -> bool:
    """Unblock; False when there was no block. Follows are not restored (as Mastodon)."""
    result = await session.execute(delete(Block).where(Block.actor_id == blocker_id, Block.target_id == target_id))
    return bool(result.rowcount)


# -- mutes -----------------------------------------------------------------------------------------

async def create_mute(session: AsyncSession, muter: Actor, target: Actor, *, notifications: bool = True,
                      duration: int = 0) -> Mute:
    """Mute `target` for `duration` seconds (0: until unmuted); muting again updates the mute."""
    if muter.id == target.id or target.kind == APPLICATION:
        raise FollowNotAllowed("This action is not allowed")
    expires_at = utcnow() + dt.timedelta(seconds=duration) if duration else None
    mute = await session.scalar(select(Mute).where(Mute.actor_id == muter.id, Mute.target_id == target.id))
    if mute is None:
        mute = Mute(id=new_id(), actor_id=muter.id, target_id=target.id)
        session.add(mute)
    mute.notifications = notifications
    mute.expires_at = expires_at
    await session.flush()
    return mute


async def remove_mute(session: AsyncSession, muter_id: int, target_id: int) -> bool:
    """Unmute; False when there was no mute."""
    result = await session.execute(delete(Mute).where(Mute.actor_id == muter_id, Mute.target_id == target_id))
    return bool(result.rowcount)
