"""Creating and deleting posts, boosts and favourites: each in the caller's one write transaction.

A resident's post is inserted with its mentions and hashtags; a public or unlisted post is also
announced by its village (a boost row authored by the village's Group actor, the shape Mastodon apps
show as "boosted by Nord"), and both are fanned into home timelines. Who receives what is decided by
`models.audience.readers_clause`, the inverse of the one visibility rule, never here.

Threads stay in their village (FEP-1b12): a reply to a village post takes that post's audience, and a
reply never widens its parent's visibility.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models import audience
from voisinage.models.actor import GROUP, Actor
from voisinage.models.audience import Viewer, followers_who_see, get_readers, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.events import Event, queue_event
from voisinage.models.ids import new_id
from voisinage.models.interaction import Favourite
from voisinage.models.notification import Notification, notify
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC, UNLISTED, VISIBILITIES, Mention, Post, PostTag
from voisinage.models.resident import Resident
from voisinage.models.timeline import add_to_homes
from voisinage.models.uris import announce_uri, post_uri
from voisinage.models.village import Village

from ..errors import ApiError, unprocessable
from .text import MAX_TAG_LENGTH, count_characters, render_text

MAX_CHARACTERS = 500
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,4})?$")  # fits posts.language (8)
# Narrowest first: a reply takes the narrower of its own and its parent's visibility.
WIDTH = {DIRECT: 0, PRIVATE: 1, UNLISTED: 2, PUBLIC: 3}


@dataclass(frozen=True)
class NewPost:
    """What the author asked for; None means "the author's default"."""

    text: str
    visibility: str | None = None
    spoiler_text: str = ""
    sensitive: bool | None = None
    language: str | None = None
    in_reply_to_id: int | None = None
    application_id: int | None = None


@dataclass(frozen=True)
class Site:
    """Where we are: the base URL of our objects and our domain (for `@user@our.domain` mentions)."""

    base_url: str
    domain: str


# --- reading with the visibility rule -------------------------------------------------------------

async def get_visible_post(session: AsyncSession, viewer: Viewer, post_id: int) -> Post:
    """The post, if `viewer` may see it; 404 otherwise (as if it did not exist)."""
    post = await session.scalar(select(Post).where(Post.id == post_id, visible_clause(viewer)))
    if post is None:
        raise ApiError(404, "Record not found")
    return post


async def get_visible_original(session: AsyncSession, viewer: Viewer, post_id: int) -> Post:
    """As `get_visible_post`, but a boost's id names the boosted post (favourite, reblog...)."""
    post = await get_visible_post(session, viewer, post_id)
    if post.reblog_of_id is not None:
        post = await get_visible_post(session, viewer, post.reblog_of_id)
    return post


# --- small writes ---------------------------------------------------------------------------------

def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def _insert_once(session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row is new (races end in one row, no error)."""
    stmt = _insert(session)(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def _add_to_counter(session: AsyncSession, model: Any, row_id: int, column: str, delta: int,
                          **also: Any) -> None:
    """`column += delta`, never below zero, in SQL (concurrent writers cannot lose an update)."""
    col = getattr(model, column)
    value = col + delta if delta > 0 else case((col + delta > 0, col + delta), else_=0)
    await session.execute(update(model).where(model.id == row_id).values({column: value, **also}),
                          execution_options={"synchronize_session": False})


# --- live events (models.events: streaming renders them for each reader, after the commit) ----------

def status_streams(post: Post, tags: list[str]) -> tuple[str, ...]:
    """The streams a status belongs to besides `user` (the home stream, checked per reader)."""
    if post.reblog:
        return ()
    streams: list[str] = []
    if post.visibility == PUBLIC:
        streams += ["public", "public:local" if post.local else "public:remote"]
    if post.visibility == DIRECT:
        streams.append("direct")
    for tag in sorted({canonical(t) for t in tags}):
        streams.append(f"hashtag:{tag}")
        if post.local:
            streams.append(f"hashtag:local:{tag}")
    return tuple(streams)


async def _notify(session: AsyncSession, recipient_id: int, kind: str, from_actor_id: int,
                  post_id: int | None) -> None:
    """`models.notification.notify`, then a live event for the recipient's open streams."""
    note = await notify(session, recipient_id, kind, from_actor_id, post_id)
    if note is not None:
        await session.flush()
        await queue_event(session, Event("notification", note.id, audience=(recipient_id,)))


async def _post_tags(session: AsyncSession, post_id: int) -> list[str]:
    return list(await session.scalars(select(PostTag.name).where(PostTag.post_id == post_id)))


# --- creating a post ------------------------------------------------------------------------------

async def create_post(session: AsyncSession, author: Actor, new: NewPost, site: Site) -> Post:
    """Validate and store a resident's post, its village's announce, home entries and notifications."""
    resident = await session.get(Resident, author.id)
    viewer = await audience.load_viewer(session, author.id)
    # PostgreSQL's text cannot hold NUL characters; nobody means to type one.
    text = (new.text or "").replace("\x00", "")
    spoiler_text = (new.spoiler_text or "").replace("\x00", "")
    _check_text(text, spoiler_text)
    visibility = new.visibility or (resident.default_visibility if resident else PUBLIC)
    if visibility not in VISIBILITIES:
        raise unprocessable(f"visibility must be one of {', '.join(VISIBILITIES)}")
    language = new.language or (resident.default_language if resident else None)
    if language is not None and not LANGUAGE.match(language):
        raise unprocessable("language is not a valid ISO 639 code")
    parent = await _reply_target(session, viewer, new.in_reply_to_id)
    visibility, audience_id = await _placement(session, author, visibility, parent)
    rendered = await render_text(session, text, site.base_url, site.domain)
    sensitive = new.sensitive if new.sensitive is not None else bool(resident and resident.default_sensitive)

    post_id = new_id()
    post = Post(
        id=post_id, uri=post_uri(site.base_url, author.uri, post_id), author_id=author.id, local=True,
        visibility=visibility, audience_id=audience_id, origin_author_id=author.id,
        in_reply_to_id=parent.id if parent else None,
        in_reply_to_account_id=parent.author_id if parent else None,
        in_reply_to_uri=parent.uri if parent else None,
        thread_id=(parent.thread_id or parent.id) if parent else post_id,
        content=rendered.html, source=text, spoiler_text=spoiler_text,
        sensitive=bool(sensitive or spoiler_text), language=language,
        application_id=new.application_id, created_at=utcnow(),
    )
    session.add(post)
    await session.flush()
    await _store_mentions_and_tags(session, post, rendered.mentions, rendered.tags)
    await _count_new_status(session, author.id, post.created_at)
    if parent is not None:
        await _add_to_counter(session, Post, parent.id, "replies_count", 1)
    await _fan_out_post(session, post, rendered.mentions, parent)
    await queue_event(session, Event("update", post.id, streams=status_streams(post, rendered.tags)))
    if visibility in (PUBLIC, UNLISTED):
        await create_village_announce(session, post)
    return post


def _check_text(text: str, spoiler_text: str) -> None:
    if not text.strip():
        raise unprocessable("Text can't be blank")
    if count_characters(text) + len(spoiler_text or "") > MAX_CHARACTERS:
        raise unprocessable(f"Text character limit of {MAX_CHARACTERS} exceeded")


async def _reply_target(session: AsyncSession, viewer: Viewer, post_id: int | None) -> Post | None:
    """The post replied to (a boost's id means its original); it must be visible to the author."""
    if post_id is None:
        return None
    post = await session.scalar(select(Post).where(Post.id == post_id, visible_clause(viewer)))
    if post is not None and post.reblog_of_id is not None:
        post = await session.scalar(select(Post).where(Post.id == post.reblog_of_id, visible_clause(viewer)))
    if post is None:
        raise unprocessable("The post you are trying to reply to does not appear to exist")
    return post


async def _placement(session: AsyncSession, author: Actor, visibility: str,
                     parent: Post | None) -> tuple[str, int | None]:
    """(visibility, audience village) of a new post: its village, or its thread's village."""
    if parent is not None and WIDTH[parent.visibility] < WIDTH[visibility]:
        visibility = parent.visibility
    if visibility in (PRIVATE, DIRECT):
        return visibility, None
    if parent is not None and parent.audience_id is not None:
        return visibility, parent.audience_id
    village_actor = await session.scalar(select(Village.actor_id).where(Village.id == author.village_id))
    if village_actor is None:
        raise unprocessable("Your account has no home village, so it can only post to followers")
    return visibility, village_actor


async def _store_mentions_and_tags(session: AsyncSession, post: Post, mentions: list[int],
                                   tags: list[str]) -> None:
    for actor_id in mentions:
        session.add(Mention(post_id=post.id, actor_id=actor_id))
    for name in tags:
        session.add(PostTag(post_id=post.id, name=name[:MAX_TAG_LENGTH],
                            canonical=canonical(name)[:MAX_TAG_LENGTH]))
    await session.flush()


async def _count_new_status(session: AsyncSession, actor_id: int, at: dt.datetime) -> None:
    await _add_to_counter(session, Actor, actor_id, "statuses_count", 1, last_status_at=at)


async def _fan_out_post(session: AsyncSession, post: Post, mentions: list[int], parent: Post | None) -> None:
    """Home entries and notifications for an original post."""
    followers = (await session.execute(followers_who_see(post, post.author_id))).all()
    mentioned = await get_readers(session, post, mentions)
    owners = {post.author_id, *mentioned, *(row.follower_id for row in followers)}
    await add_to_homes(session, post.id, post.id, owners)
    for actor_id in mentions:
        if actor_id in mentioned:
            await _notify(session, actor_id, "mention", post.author_id, post.id)
    # As Mastodon: no "new post" notification for a reply to someone else.
    if parent is None or parent.author_id == post.author_id:
        for row in followers:
            if row.notify and row.follower_id not in mentioned:
                await _notify(session, row.follower_id, "status", post.author_id, post.id)


async def create_village_announce(session: AsyncSession, post: Post) -> Post | None:
    """The village announces a post of its audience to its followers (a boost by the Group actor).

    Nobody is notified: "the author is not notified of their own village's announce" (DESIGN.md),
    and the boost does not count in the post's `reblogs_count`.
    """
    village_actor = await session.scalar(
        select(Actor).join(Village, Village.actor_id == Actor.id).where(Actor.id == post.audience_id))
    if village_actor is None:
        return None  # a thread of a partner's village: that village announces it, not us
    announce = _boost_row(post, village_actor)
    session.add(announce)
    await session.flush()
    await _count_new_status(session, village_actor.id, announce.created_at)
    followers = (await session.execute(followers_who_see(announce, village_actor.id))).all()
    await add_to_homes(session, announce.id, post.id, {r.follower_id for r in followers if r.show_reblogs})
    await queue_event(session, Event("update", announce.id))
    return announce


def _boost_row(original: Post, booster: Actor) -> Post:
    """A boost carries its original's audience, so it reaches no one the original did not."""
    boost_id = new_id()
    return Post(
        id=boost_id, uri=announce_uri(booster.uri, boost_id), author_id=booster.id, local=True,
        visibility=original.visibility, audience_id=original.audience_id,
        origin_author_id=original.origin_author_id, reblog=True, reblog_of_id=original.id,
        created_at=utcnow(),
    )


# --- boosts ---------------------------------------------------------------------------------------

async def create_reblog(session: AsyncSession, booster: Actor, post_id: int) -> Post:
    """Boost a post the booster may see (public posts, own private ones); returns the boost row."""
    viewer = await audience.load_viewer(session, booster.id)
    original = await get_visible_original(session, viewer, post_id)
    if not audience.boostable(original, booster.id):
        raise unprocessable("This post cannot be boosted: only public posts (and your own private ones) can be")
    # One boost per booster and post: lock the booster's row so two requests at once cannot both insert
    # (PostgreSQL; SQLite's write transactions are serial already).
    await session.execute(select(Actor.id).where(Actor.id == booster.id).with_for_update())
    existing = await session.scalar(
        select(Post).where(Post.author_id == booster.id, Post.reblog_of_id == original.id))
    if existing is not None:
        return existing
    boost = _boost_row(original, booster)
    session.add(boost)
    await session.flush()
    await _count_new_status(session, booster.id, boost.created_at)
    await _add_to_counter(session, Post, original.id, "reblogs_count", 1)
    followers = (await session.execute(followers_who_see(boost, booster.id))).all()
    owners = {booster.id, *(r.follower_id for r in followers if r.show_reblogs)}
    await add_to_homes(session, boost.id, original.id, owners)
    await queue_event(session, Event("update", boost.id))
    await _notify(session, original.author_id, "reblog", booster.id, original.id)
    return boost


async def delete_reblog(session: AsyncSession, booster: Actor, post_id: int) -> Post:
    """Undo the booster's boost of a post (idempotent); returns the original."""
    viewer = await audience.load_viewer(session, booster.id)
    original = await get_visible_original(session, viewer, post_id)
    boost = await session.scalar(
        select(Post).where(Post.author_id == booster.id, Post.reblog_of_id == original.id))
    if boost is not None:
        await _remove_boost(session, boost, original)
    return original


async def _remove_boost(session: AsyncSession, boost: Post, original: Post) -> None:
    booster = await session.get(Actor, boost.author_id)
    await session.execute(delete(Post).where(Post.id == boost.id))
    await queue_event(session, Event("delete", boost.id))
    await _add_to_counter(session, Actor, boost.author_id, "statuses_count", -1)
    if booster is not None and booster.kind != GROUP:
        await _add_to_counter(session, Post, original.id, "reblogs_count", -1)
        await session.execute(delete(Notification).where(
            Notification.kind == "reblog", Notification.from_actor_id == boost.author_id,
            Notification.post_id == original.id))
    await session.refresh(original)


# --- favourites -----------------------------------------------------------------------------------

async def create_favourite(session: AsyncSession, actor_id: int, post_id: int) -> Post:
    """Favourite a post the actor may see (idempotent); returns the post favourited."""
    viewer = await audience.load_viewer(session, actor_id)
    post = await get_visible_original(session, viewer, post_id)
    added = await _insert_once(session, Favourite, {"id": new_id(), "actor_id": actor_id, "post_id": post.id,
                                                    "created_at": utcnow()}, ["actor_id", "post_id"])
    if added:
        await _add_to_counter(session, Post, post.id, "favourites_count", 1)
        await _notify(session, post.author_id, "favourite", actor_id, post.id)
        await session.refresh(post)
    return post


async def delete_favourite(session: AsyncSession, actor_id: int, post_id: int) -> Post:
    """Undo a favourite (idempotent); returns the post."""
    viewer = await audience.load_viewer(session, actor_id)
    post = await get_visible_original(session, viewer, post_id)
    result = await session.execute(delete(Favourite).where(Favourite.actor_id == actor_id,
                                                           Favourite.post_id == post.id))
    if result.rowcount:
        await _add_to_counter(session, Post, post.id, "favourites_count", -1)
        await session.execute(delete(Notification).where(
            Notification.kind == "favourite", Notification.from_actor_id == actor_id,
            Notification.post_id == post.id))
        await session.refresh(post)
    return post


# --- deleting -------------------------------------------------------------------------------------

async def get_own_post(session: AsyncSession, actor_id: int, post_id: int) -> Post:
    """A post the actor may delete: 404 when they cannot see it, 403 when it is someone else's."""
    viewer = await audience.load_viewer(session, actor_id)
    post = await get_visible_post(session, viewer, post_id)
    if post.author_id != actor_id:
        raise ApiError(403, "This action is not allowed")
    return post


async def delete_post(session: AsyncSession, post: Post) -> None:
    """Remove a post with everything that shows it: boosts (the village's announce too), home entries,
    notifications, favourites; counters follow. A boost row is simply un-boosted."""
    if post.reblog_of_id is not None:
        original = await session.get(Post, post.reblog_of_id)
        await _remove_boost(session, post, original)
        return
    # Counters in the order create_post takes them (author, parent, then boosters and the village), so
    # that concurrent transactions on PostgreSQL lock rows in one order and cannot deadlock.
    await _add_to_counter(session, Actor, post.author_id, "statuses_count", -1)
    if post.in_reply_to_id is not None:
        await _add_to_counter(session, Post, post.in_reply_to_id, "replies_count", -1)
    boosts = list(await session.execute(select(Post.id, Post.author_id).where(Post.reblog_of_id == post.id)))
    for boost_id, booster_id in boosts:
        await _add_to_counter(session, Actor, booster_id, "statuses_count", -1)
        await queue_event(session, Event("delete", boost_id))
    if boosts:
        await session.execute(delete(Post).where(Post.reblog_of_id == post.id))
    streams = status_streams(post, await _post_tags(session, post.id))
    await session.execute(delete(Post).where(Post.id == post.id))
    await queue_event(session, Event("delete", post.id, streams=streams))
