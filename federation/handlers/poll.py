"""Polls across instances: a partner's `Question` stored as a Poll, its counts refreshed by
Update{Question}, and the votes partners' residents cast in our polls.

A vote arrives as Mastodon sends it: Create{Note} with `name` = the option's title, no content,
`inReplyTo` = our Question, addressed to the poll's author. It counts once per actor (once per option
in a multiple-choice poll), only while the poll is open and only from an actor who may see the post
(a follower for a followers-only post, a mentioned actor for a direct one, an instance that may
fetch it for a public one); it is never stored as a post. Once counted, the instances that received the
poll get its new counts (Update{Question}), at most once a minute (`Poll.update_due`). A Question
without `endTime` (Misskey, Pleroma allow open polls) is stored without an end.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import new_id
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import DIRECT, PRIVATE, Mention, Post
from voisinage.models.remote_audience import remote_may_see

from ..dispatch import InboxContext
from ..from_ap import ParsedPoll, poll_vote_of
from ..outbox import publish_update
from .common import get_post

log = logging.getLogger("voisinage.federation.poll")

def _now(ictx: InboxContext) -> dt.datetime:
    return dt.datetime.fromtimestamp(ictx.ctx.clock(), dt.UTC)


async def store_remote_poll(session: AsyncSession, post: Post, parsed: ParsedPoll) -> Poll:
    """The Poll of a remote Question, with the counts its origin announces."""
    poll = Poll(id=new_id(), post_id=post.id, author_id=post.author_id, options=list(parsed.options),
                multiple=parsed.multiple, hide_totals=False, remote_counts=list(parsed.counts),
                remote_voters=parsed.voters, expires_at=parsed.expires_at,
                closed_at=parsed.closed_at)
    session.add(poll)
    await session.flush()
    return poll


async def refresh_remote_poll(session: AsyncSession, post: Post, parsed: ParsedPoll | None) -> None:
    """Update{Question}: new counts (they include our residents' votes once the origin counted them).

    Other options (an edit) drop our residents' votes, as Mastodon does; an end announced by the
    origin moves `expires_at`, and the periodic closing notifies our voters. No poll any more: removed.
    """
    poll = await session.scalar(select(Poll).where(Poll.post_id == post.id))
    if poll is None:
        if parsed is not None:
            await store_remote_poll(session, post, parsed)
        return
    if parsed is None:
        await session.execute(delete(Poll).where(Poll.id == poll.id))
        return
    if list(poll.options) != parsed.options or poll.multiple != parsed.multiple:
        await session.execute(delete(PollVote).where(PollVote.poll_id == poll.id))
        poll.options, poll.multiple = list(parsed.options), parsed.multiple
    poll.remote_counts, poll.remote_voters = list(parsed.counts), parsed.voters
    end = parsed.closed_at or parsed.expires_at
    if end is not None and poll.closed_at is None:
        poll.expires_at = end
    await session.flush()


async def take_vote(ictx: InboxContext, note: dict[str, Any]) -> bool:
    """Count a vote in one of our polls; True when `note` is a vote of ours (counted or refused),
    False when it is an ordinary note to store."""
    found = poll_vote_of(note)
    if found is None or not ictx.ctx.is_local_url(found[0]):
        return False
    question_uri, title = found
    post = await get_post(ictx.session, question_uri)
    poll = await ictx.session.scalar(select(Poll).where(Poll.post_id == post.id)) if post else None
    if post is None or poll is None or not post.local:
        log.info("vote by %s in %s, which is not one of our polls: ignored", ictx.signer.uri, question_uri[:200])
        return True
    if title not in poll.options or poll.ended(_now(ictx)):
        log.info("vote by %s in poll %s: closed or no such option", ictx.signer.uri, poll.id)
        return True
    if not await _may_vote(ictx.session, post, ictx.signer):
        log.info("vote by %s in poll %s, which it may not see: ignored", ictx.signer.uri, poll.id)
        return True
    if await _count_vote(ictx.session, poll, ictx.signer.id, poll.options.index(title)) and poll.update_due(_now(ictx)):
        await publish_update(ictx.session, ictx.ctx, post, poll=True)  # the instances that received it see the counts
    return True


async def _may_vote(session: AsyncSession, post: Post, voter: Actor) -> bool:
    """Whether `voter` is in the post's audience: per actor where we know it, per instance otherwise."""
    if post.visibility == PRIVATE:
        return await session.scalar(select(Follow.id).where(
            Follow.follower_id == voter.id, Follow.target_id == post.author_id, Follow.state == ACCEPTED)) is not None
    if post.visibility == DIRECT:
        return await session.scalar(select(Mention.post_id).where(
            Mention.post_id == post.id, Mention.actor_id == voter.id)) is not None
    return await remote_may_see(session, post, voter)


async def _count_vote(session: AsyncSession, poll: Poll, voter_id: int, choice: int) -> bool:
    """Once per actor, or once per option in a multiple-choice poll (Mastodon sends one Create each);
    True when counted."""
    # Lock the poll row (PostgreSQL) so two deliveries cannot both pass the check, and read it again.
    await session.execute(select(Poll).where(Poll.id == poll.id).with_for_update()
                          .execution_options(populate_existing=True))
    choices = set(await session.scalars(select(PollVote.choice).where(
        PollVote.poll_id == poll.id, PollVote.actor_id == voter_id)))
    if choice in choices or (choices and not poll.multiple):
        return False
    session.add(PollVote(id=new_id(), poll_id=poll.id, actor_id=voter_id, choice=choice))
    await session.flush()
    return True
