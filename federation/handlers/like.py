"""Likes from peers: Like and Undo{Like} of our posts; and Undo whose object is only an id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from voisinage.models.counters import add_to_counter
from voisinage.models.ids import new_id
from voisinage.models.interaction import Favourite
from voisinage.models.notification import notify
from voisinage.models.post import DIRECT, Post

from ..dispatch import InboxContext, handles
from ..vocab import first, get_id
from .common import get_post
from .follow import undo_follow_by
from .note import undo_announce_by


@handles("Like")
async def on_like(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """The signer likes one of our posts: a favourite, counted, and its author told."""
    post = await get_post(ictx.session, ictx.ctx.canonical_url(get_id(first(activity.get("object")))))
    if post is None or not post.local or post.reblog_of_id is not None or post.visibility == DIRECT:
        return
    found = await ictx.session.scalar(select(Favourite.id).where(
        Favourite.actor_id == ictx.signer.id, Favourite.post_id == post.id))
    if found is not None:
        return
    ictx.session.add(Favourite(id=new_id(), actor_id=ictx.signer.id, post_id=post.id, uri=str(activity["id"])))
    await ictx.session.flush()
    await add_to_counter(ictx.session, Post, post.id, "favourites_count", 1)
    await notify(ictx.session, post.author_id, "favourite", ictx.signer.id, post.id)


@handles("Undo", "Like")
async def on_undo_like(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """The signer takes back a like."""
    inner = first(activity.get("object"))
    post_uri = get_id(inner.get("object")) if isinstance(inner, dict) else None
    await undo_like_by(ictx, get_id(inner), post_uri)


async def undo_like_by(ictx: InboxContext, like_uri: str | None, post_uri: str | None) -> bool:
    """Remove the signer's favourite named by uri, or of `post_uri`; True when one was removed."""
    favourite = None
    if like_uri:
        favourite = await ictx.session.scalar(select(Favourite).where(
            Favourite.uri == like_uri, Favourite.actor_id == ictx.signer.id))
    if favourite is None and post_uri:
        post = await get_post(ictx.session, post_uri)
        if post is not None:
            favourite = await ictx.session.scalar(select(Favourite).where(
                Favourite.actor_id == ictx.signer.id, Favourite.post_id == post.id))
    if favourite is None:
        return False
    await add_to_counter(ictx.session, Post, favourite.post_id, "favourites_count", -1)
    await ictx.session.execute(delete(Favourite).where(Favourite.id == favourite.id))
    return True


@handles("Undo")
async def on_undo(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """Undo whose object is a bare id (some servers send only the id): try each kind we know."""
    uri = get_id(first(activity.get("object")))
    if not uri:
        return
    if await undo_follow_by(ictx, uri, None):
        return
    if await undo_like_by(ictx, uri, None):
        return
    await undo_announce_by(ictx, uri)
