"""FEP-1b12 relaying: a partner's public note in the thread of one of our villages is announced by
that village, as our residents' posts are.

Here, the village's announce is a boost row by its Group actor (so the village's followers see the
note at home, as for a local post); elsewhere, the village's remote followers on every instance but
the note's origin get an Announce whose object is the Note as received, FEP-8b32 proof included, so
that a third commune can trust it without asking the origin. When the origin later updates or deletes
the note, the village announces that Update or Delete, as received, to the same instances (Lemmy).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.counters import add_to_counter
from voisinage.models.ids import new_id
from voisinage.models.post import PUBLIC, Post
from voisinage.models.timeline import followers_into_homes
from voisinage.models.uris import announce_uri
from voisinage.models.village import Village

from .. import outbox
from ..dispatch import InboxContext
from ..from_ap import parse_note
from ..partners import host_of
from ..to_ap import iso
from ..vocab import is_public, types_of


async def local_village_of(ictx: InboxContext, post: Post) -> Actor | None:
    """The Group actor of our village whose thread the post is in, if any."""
    if post.audience_id is None:
        return None
    return await ictx.session.scalar(
        select(Actor).join(Village, Village.actor_id == Actor.id).where(Actor.id == post.audience_id))


def _public_in(doc: dict[str, Any], village: Actor) -> bool:
    """Whether the note is meant for the whole village: its `audience`, the village's followers, or
    as:Public among its addresses (a note only addressed to the Group itself is a mention, not a post)."""
    parsed = parse_note(doc)
    return parsed.audience == village.uri or village.followers_uri in parsed.addresses \
        or is_public(parsed.addresses)


async def relay_note(ictx: InboxContext, post: Post, doc: dict[str, Any]) -> None:
    """A partner's new public note in one of our villages' threads: the village boosts it here and
    announces it, as received, to its followers on other instances. Anything else is not relayed."""
    if post.local or post.visibility != PUBLIC or post.reblog_of_id is not None:
        return
    village = await local_village_of(ictx, post)
    if village is None or not _public_in(doc, village):
        return
    boost_id = new_id()
    boost = Post(id=boost_id, uri=announce_uri(village.uri, boost_id), author_id=village.id, local=True,
                 visibility=post.visibility, audience_id=post.audience_id, origin_author_id=post.origin_author_id,
                 reblog=True, reblog_of_id=post.id, created_at=utcnow())
    ictx.session.add(boost)
    await ictx.session.flush()
    await add_to_counter(ictx.session, Actor, village.id, "statuses_count", 1)
    await followers_into_homes(ictx.session, boost, village.id)
    await outbox.publish_relay(ictx.session, ictx.ctx, village, doc, host_of(post.uri), iso(boost.created_at),
                               boost.uri)


async def relay_change(ictx: InboxContext, post: Post, activity: dict[str, Any]) -> None:
    """The origin's Update or Delete of a note our village relayed: the village announces the activity,
    as received, to the instances it relayed the note to. Call before a deletion removes the rows."""
    village = await local_village_of(ictx, post)
    if village is None or post.local:
        return
    relayed = await ictx.session.scalar(select(Post.id).where(
        Post.author_id == village.id, Post.reblog_of_id == post.id))
    if relayed is None:
        return  # never relayed: nothing to forward
    await outbox.publish_relay(ictx.session, ictx.ctx, village, activity, host_of(post.uri), iso(utcnow()))
    if "Delete" in types_of(activity):
        await add_to_counter(ictx.session, Actor, village.id, "statuses_count", -1)  # its boost row goes with the note
