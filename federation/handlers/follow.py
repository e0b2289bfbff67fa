"""Everything about a Follow from a peer: Follow, Accept, Reject and Undo{Follow}.

A partner's actor following one of our villages is accepted at once (the village announces public
posts to its followers); following a resident is accepted unless the resident is locked. Accept and
Reject must come from the actor that was followed, for a Follow we really sent (GoToSocial
federatingdb/accept.go): anything else is ignored and creates no relationship.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from voisinage.models.actor import Actor
from voisinage.models.counters import add_to_counter
from voisinage.models.follow import ACCEPTED, PENDING, Follow
from voisinage.models.ids import new_id
from voisinage.models.mute_block import Block
from voisinage.models.notification import notify

from .. import outbox
from ..dispatch import InboxContext, handles
from ..vocab import first, get_id
from .common import get_actor

log = logging.getLogger("voisinage.federation.follow")


async def _is_blocked(ictx: InboxContext, blocker_id: int, target_id: int) -> bool:
    found = await ictx.session.scalar(select(Block.id).where(
        Block.actor_id == blocker_id, Block.target_id == target_id))
    return found is not None


async def count_follow(ictx: InboxContext, follow: Follow, step: int) -> None:
    """Move both actors' counters for an accepted follow."""
    await add_to_counter(ictx.session, Actor, follow.follower_id, "following_count", step)
    await add_to_counter(ictx.session, Actor, follow.target_id, "followers_count", step)


@handles("Follow")
async def on_follow(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A remote actor follows one of ours: store it, accept it (unless locked), send the Accept."""
    target = await get_actor(ictx.session, get_id(first(activity.get("object"))))
    if target is None or not target.local or target.suspended_at is not None:
        return
    follower = ictx.signer
    if await _is_blocked(ictx, target.id, follower.id):
        await _send_reject(ictx, follower, target, activity)
        return
    follow = await ictx.session.scalar(select(Follow).where(
        Follow.follower_id == follower.id, Follow.target_id == target.id))
    if follow is None:
        state = PENDING if target.locked and not target.is_group else ACCEPTED
        follow = Follow(id=new_id(), follower_id=follower.id, target_id=target.id, state=state,
                        uri=str(activity["id"]))
        ictx.session.add(follow)
        await ictx.session.flush()
        if state == ACCEPTED:
            await count_follow(ictx, follow, 1)
        await notify(ictx.session, target.id, "follow" if state == ACCEPTED else "follow_request", follower.id)
    elif follow.uri != activity["id"]:
        follow.uri = str(activity["id"])  # a re-sent Follow: answer its id
    if follow.state == ACCEPTED:
        await outbox.publish_accept(ictx.session, ictx.ctx, follow, activity)


async def _send_reject(ictx: InboxContext, follower: Actor, target: Actor, activity: dict[str, Any]) -> None:
    from .. import to_ap

    await outbox.publish(ictx.session, ictx.ctx, to_ap.reject_of(activity, target), target,
                         outbox.inboxes_of([follower]))


async def find_sent_follow(ictx: InboxContext, answered: Any) -> Follow | None:
    """The Follow we sent that an Accept/Reject answers: by its id (bovine sends only the id), else
    by the embedded Follow's actor and object. It must target the signer of the answer."""
    uri = get_id(answered)
    follow = None
    if uri:
        follow = await ictx.session.scalar(select(Follow).where(Follow.uri == uri))
    if follow is None and isinstance(answered, dict):
        follower = await get_actor(ictx.session, get_id(answered.get("actor")))
        if follower is not None and follower.local and get_id(answered.get("object")) == ictx.signer.uri:
            follow = await ictx.session.scalar(select(Follow).where(
                Follow.follower_id == follower.id, Follow.target_id == ictx.signer.id))
    if follow is None or follow.target_id != ictx.signer.id:
        log.info("answer to a Follow we did not send to %s: ignored", ictx.signer.uri)
        return None
    return follow


@handles("Accept")
async def on_accept(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """The followed remote actor accepts our Follow: the link is live."""
    follow = await find_sent_follow(ictx, first(activity.get("object")))
    if follow is None or follow.state == ACCEPTED:
        return
    follow.state = ACCEPTED
    await ictx.session.flush()
    await count_follow(ictx, follow, 1)


@handles("Reject")
async def on_reject(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """The followed remote actor refuses (or ends) our Follow."""
    follow = await find_sent_follow(ictx, first(activity.get("object")))
    if follow is not None:
        await remove(ictx, follow)


async def remove(ictx: InboxContext, follow: Follow) -> None:
    """Delete a follow and move the counters if it was accepted."""
    if follow.state == ACCEPTED:
        await count_follow(ictx, follow, -1)
    await ictx.session.execute(delete(Follow).where(Follow.id == follow.id))


@handles("Undo", "Follow")
async def on_undo_follow(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A remote follower stops following one of ours."""
    inner = first(activity.get("object"))
    await undo_follow_by(ictx, get_id(inner), get_id(inner.get("object")) if isinstance(inner, dict) else None)


async def undo_follow_by(ictx: InboxContext, follow_uri: str | None, target_uri: str | None) -> bool:
    """Remove the signer's follow named by uri, or of `target_uri`; True when one was removed."""
    follow = None
    if follow_uri:
        follow = await ictx.session.scalar(select(Follow).where(
            Follow.uri == follow_uri, Follow.follower_id == ictx.signer.id))
    if follow is None and target_uri:
        target = await get_actor(ictx.session, target_uri)
        if target is not None:
            follow = await ictx.session.scalar(select(Follow).where(
                Follow.follower_id == ictx.signer.id, Follow.target_id == target.id))
    if follow is None:
        return False
    await remove(ictx, follow)
    return True
