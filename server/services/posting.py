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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from sqlalchemy import BigInteger, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from voisinage.models import audience
from voisinage.models.actor import ACCOUNT_COLUMNS, ACCOUNT_VERSION, GROUP, Actor
from voisinage.models.audience import (
    Viewer,
    get_readers,
    visible_clause,
)
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.conversation import Conversation
from voisinage.models.counters import add_to_counter
from voisinage.models.db import dialect_insert, fast, get_fast, insert_all, insert_new
from voisinage.models.events import Event, queue_event
from voisinage.models.ids import new_id
from voisinage.models.interaction import Favourite
from voisinage.models.media import MediaAttachment
from voisinage.models.notification import Notification, notify
from voisinage.models.oauth import Application
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import (
    DIRECT,
    PRIVATE,
    PUBLIC,
    UNLISTED,
    VISIBILITIES,
    Mention,
    Post,
    PostTag,
)
from voisinage.models.resident import Resident
from voisinage.models.status_edit import StatusEdit
from voisinage.models.timeline import HomeEntry, add_to_homes, followers_into_homes, tag_followers_who_see
from voisinage.models.tombstone import Tombstone
from voisinage.models.uris import announce_uri, post_uri
from voisinage.models.village import Village

from ..errors import ApiError, unprocessable
from . import federate
from . import media as media_service
from .text import MAX_TAG_LENGTH, count_characters, render_text

MAX_CHARACTERS = 500
MAX_MEDIA = 4
MAX_POLL_OPTIONS = 4
MAX_POLL_OPTION_CHARS = 50
MIN_POLL_SECONDS = 300
MAX_POLL_SECONDS = 30 * 24 * 3600
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
    media_ids: tuple[int, ...] = ()
    poll: PollSpec | None = None


@dataclass(frozen=True)
class PollSpec:
    """A validated poll to attach to a post (see `parse_poll`)."""

    options: tuple[str, ...]
    expires_in: int
    multiple: bool = False
    hide_totals: bool = False


@dataclass(frozen=True)
class PostEdit:
    """The new version of a post: None for media_ids means "keep the media as they are"."""

    text: str
    spoiler_text: str = ""
    sensitive: bool | None = None
    language: str | None = None
    media_ids: tuple[int, ...] | None = None
    media_attributes: tuple[dict[str, Any], ...] = ()
    poll: PollSpec | None = None


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

async def insert_once(session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row is new (races end in one row, no error)."""
    stmt = dialect_insert(session)(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    result = await session.execute(stmt)
    return bool(result.rowcount)


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
        await queue_event(session, Event("notification", note.id, audience=(recipient_id,)))


async def _post_tags(session: AsyncSession, post_id: int) -> list[str]:
    return list(await session.scalars(select(PostTag.name).where(PostTag.post_id == post_id)))


# --- creating a post ------------------------------------------------------------------------------

class Author(Protocol):
    """What posting reads of a new post's author: a row of `AUTHOR`."""

    id: int
    uri: str
    resident_id: int | None  # None for a village's actor
    default_visibility: str | None
    default_language: str | None
    default_sensitive: bool | None
    village_actor_id: int | None  # the author's village (its Group actor), and its uri
    village_uri: str | None
    app_id: int | None  # the application posting (`app` parameter), its name and website
    app_name: str | None
    app_website: str | None


_VILLAGE_ACTOR = aliased(Actor)

# A new post's author as posting reads it, in one statement (the Actor and Resident rows have keys, the
# password hash and more: not loaded for this): their posting defaults, their village, and the
# application they post with (`app`, which the answer shows).
AUTHOR = fast(
    select(Actor.id, Actor.uri, Resident.actor_id.label("resident_id"), Resident.default_visibility,
           Resident.default_language, Resident.default_sensitive, Village.actor_id.label("village_actor_id"),
           _VILLAGE_ACTOR.uri.label("village_uri"), Application.id.label("app_id"),
           Application.name.label("app_name"), Application.website.label("app_website"))
    .outerjoin(Resident, Resident.actor_id == Actor.id)
    .outerjoin(Village, Village.id == Actor.village_id)
    .outerjoin(_VILLAGE_ACTOR, _VILLAGE_ACTOR.id == Village.actor_id)
    .outerjoin(Application, Application.id == bindparam("app", type_=BigInteger))
    .where(Actor.id == bindparam("id")))


@dataclass(frozen=True)
class Created:
    """A post just stored, with the relations stored along: enough to answer with it without reading
    it back."""

    post: Post
    viewer: audience.Viewer  # its author
    mentions: list[int]
    tags: list[str]
    media: list[MediaAttachment]
    poll: Poll | None
    app: PostingApp | None
    author: Any  # the author's row after the post (`_AUTHOR_ACCOUNT`), for its Account in the answer


class PostingApp(NamedTuple):
    """The application a post was made with, as its status shows it."""

    id: int
    name: str
    website: str | None


async def create_post(session: AsyncSession, author: Author, new: NewPost, site: Site) -> Created:
    """Validate and store a resident's post, its village's announce, home entries and notifications."""
    resident = author if author.resident_id is not None else None
    viewer = audience.Viewer(author.id, author.village_actor_id)
    # PostgreSQL's text cannot hold NUL characters; nobody means to type one.
    text = (new.text or "").replace("\x00", "")
    spoiler_text = (new.spoiler_text or "").replace("\x00", "")
    _check_text(text, spoiler_text, has_media=bool(new.media_ids))
    if new.media_ids and new.poll is not None:
        raise unprocessable("Polls cannot be combined with media attachments")
    media = await _attachable(session, author.id, new.media_ids)
    visibility = new.visibility or (resident.default_visibility if resident else PUBLIC)
    if visibility not in VISIBILITIES:
        raise unprocessable(f"visibility must be one of {', '.join(VISIBILITIES)}")
    language = new.language or (resident.default_language if resident else None)
    if language is not None and not LANGUAGE.match(language):
        raise unprocessable("language is not a valid ISO 639 code")
    parent = await _reply_target(session, viewer, new.in_reply_to_id)
    visibility, audience_id = _placement(viewer, visibility, parent)
    rendered = await render_text(session, text, site.base_url, site.domain)
    sensitive = new.sensitive if new.sensitive is not None else bool(resident and resident.default_sensitive)

    post_id = new_id()
    post = await insert_new(
        session, Post, id=post_id, uri=post_uri(site.base_url, author.uri, post_id), author_id=author.id, local=True,
        visibility=visibility, audience_id=audience_id, origin_author_id=author.id,
        in_reply_to_id=parent.id if parent else None,
        in_reply_to_account_id=parent.author_id if parent else None,
        in_reply_to_uri=parent.uri if parent else None,
        thread_id=(parent.thread_id or parent.id) if parent else post_id,
        content=rendered.html, source=text, spoiler_text=spoiler_text,
        sensitive=bool(sensitive or spoiler_text), language=language,
        application_id=new.application_id, created_at=utcnow(),
    )
    await _store_mentions_and_tags(session, post, rendered.mentions, rendered.tags)
    media_service.attach_media(media, post.id)
    poll = create_poll(session, post, new.poll) if new.poll is not None else None
    await session.flush()
    homes = await _fan_out_post(session, post, rendered.mentions, parent)
    tagged = await tag_followers_who_see(session, post, rendered.tags)
    await add_to_homes(session, post.id, post.id, tagged)
    homes.update(tagged)
    if visibility == DIRECT:
        await update_conversations(session, post, rendered.mentions)
    await queue_event(session, Event("update", post.id, streams=status_streams(post, rendered.tags)))
    announce = await create_village_announce(session, post, author, homes) if visibility in (PUBLIC, UNLISTED) else None
    await federate.post_created(session, post, federate.NewPost(  # after the announce: the Announce's id is its uri
        rendered.mentions, _stored_tags(rendered.tags), media, poll is not None, announce.uri if announce else None))
    # The counters last: an UPDATE holds its row until the commit, and every post of a village updates
    # the village's row (its announce). Taken earlier, a village's posts waited for each other's
    # federation and fan-out on PostgreSQL. One row a statement, always author, village, parent: the
    # rows of one UPDATE are locked in the order PostgreSQL finds them, which moves as rows are
    # updated, and a first federated post locks the author's then the village's row (their keys);
    # posts locking the two in either order deadlocked.
    account = await _count_new_status(session, author.id, post.created_at, returning=_AUTHOR_ACCOUNT)
    if announce is not None:
        await _count_new_status(session, announce.author_id, announce.created_at)
    if parent is not None:
        await add_to_counter(session, Post, parent.id, "replies_count", 1)
    app = PostingApp(author.app_id, author.app_name, author.app_website) if author.app_id is not None else None
    return Created(post, viewer, rendered.mentions, _stored_tags(rendered.tags), media, poll, app, account)


_AUTHOR_ACCOUNT = (*ACCOUNT_COLUMNS, ACCOUNT_VERSION)  # the author's row as its post left it, for the answer


async def _attachable(session: AsyncSession, actor_id: int, media_ids: Sequence[int]) -> list[MediaAttachment]:
    try:
        return await media_service.get_attachable_media(session, actor_id, media_ids, limit=MAX_MEDIA)
    except media_service.MediaError as exc:
        raise unprocessable(str(exc)) from None


def _check_text(text: str, spoiler_text: str, has_media: bool = False) -> None:
    if not text.strip() and not has_media:
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


def _placement(author: Viewer, visibility: str, parent: Post | None) -> tuple[str, int | None]:
    """(visibility, audience village) of a new post by `author`: its village, or its thread's village."""
    if parent is not None and WIDTH[parent.visibility] < WIDTH[visibility]:
        visibility = parent.visibility
    if visibility in (PRIVATE, DIRECT):
        return visibility, None
    if parent is not None and parent.audience_id is not None:
        return visibility, parent.audience_id
    if author.village_actor_id is None:
        raise unprocessable("Your account has no home village, so it can only post to followers")
    return visibility, author.village_actor_id


async def _store_mentions_and_tags(session: AsyncSession, post: Post, mentions: list[int],
                                   tags: list[str]) -> None:
    await insert_all(session, Mention, [{"post_id": post.id, "actor_id": actor_id} for actor_id in mentions])
    await insert_all(session, PostTag, [{"post_id": post.id, "name": name, "canonical": canonical(name)[:MAX_TAG_LENGTH]}
                                        for name in _stored_tags(tags)])


def _stored_tags(tags: list[str]) -> list[str]:
    return [name[:MAX_TAG_LENGTH] for name in tags]


async def _count_new_status(session: AsyncSession, actor_id: int, at: dt.datetime,
                            returning: tuple[Any, ...] = ()) -> Any:
    return await add_to_counter(session, Actor, actor_id, "statuses_count", 1, returning, last_status_at=at)


async def _fan_out_post(session: AsyncSession, post: Post, mentions: list[int], parent: Post | None) -> set[int]:
    """Home entries and notifications for an original post; the readers whose home got it."""
    mentioned = await get_readers(session, post, mentions)
    followers = await followers_into_homes(session, post, post.author_id, also={post.author_id, *mentioned})
    owners = {post.author_id, *mentioned, *(row.follower_id for row in followers)}
    for actor_id in mentions:
        if actor_id in mentioned:
            await _notify(session, actor_id, "mention", post.author_id, post.id)
    # As Mastodon: no "new post" notification for a reply to someone else.
    if parent is None or parent.author_id == post.author_id:
        for row in followers:
            if row.notify and row.follower_id not in mentioned:
                await _notify(session, row.follower_id, "status", post.author_id, post.id)
    return owners


async def create_village_announce(session: AsyncSession, post: Post, author: Author,
                                  have_post: set[int]) -> Post | None:
    """The village announces a post of its audience to its followers (a boost by the Group actor); the
    caller counts it in the village's `statuses_count`. `have_post`: the readers whose home the post
    (new in this transaction) reached, who do not get the announce too.

    Nobody is notified: "the author is not notified of their own village's announce" (DESIGN.md),
    and the boost does not count in the post's `reblogs_count`.
    """
    village_actor: Any = None
    if post.audience_id == author.village_actor_id:  # the author's own village, read with the author
        village_actor = _VillageActor(author.village_actor_id, author.village_uri)
    elif post.audience_id is not None:  # a reply in another village's thread
        village_actor = (await session.execute(_LOCAL_VILLAGE, {"id": post.audience_id})).first()
    if village_actor is None:
        return None  # a thread of a partner's village: that village announces it, not us
    announce = await insert_new(session, Post, **_boost_values(post, village_actor))
    await followers_into_homes(session, announce, village_actor.id, have_original=have_post)
    await queue_event(session, Event("update", announce.id))
    return announce


class _VillageActor(NamedTuple):
    id: int
    uri: str


# The id and uri of a post's audience when it is one of our villages (the Group that announces it).
_LOCAL_VILLAGE = fast(select(Actor.id, Actor.uri).join(Village, Village.actor_id == Actor.id)
                      .where(Actor.id == bindparam("id")))


def _boost_values(original: Post, booster: Any) -> dict[str, Any]:
    """The row of a boost by `booster` (an Actor, or a row with its `id` and `uri`). A boost carries its
    original's audience, so it reaches no one the original did not."""
    boost_id = new_id()
    return {"id": boost_id, "uri": announce_uri(booster.uri, boost_id), "author_id": booster.id, "local": True,
            "visibility": original.visibility, "audience_id": original.audience_id,
            "origin_author_id": original.origin_author_id, "reblog": True, "reblog_of_id": original.id,
            "created_at": utcnow()}


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
    boost = Post(**_boost_values(original, booster))  # an ORM object: the answer refreshes it
    session.add(boost)
    await session.flush()
    await _count_new_status(session, booster.id, boost.created_at)
    await add_to_counter(session, Post, original.id, "reblogs_count", 1)
    await followers_into_homes(session, boost, booster.id, also={booster.id})
    await queue_event(session, Event("update", boost.id))
    await _notify(session, original.author_id, "reblog", booster.id, original.id)
    await federate.boosted(session, boost)
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
    booster = await get_fast(session, Actor, boost.author_id)
    await federate.unboosting(session, boost)  # first: the Undo goes where the Announce went
    await session.execute(delete(Post).where(Post.id == boost.id))
    await queue_event(session, Event("delete", boost.id))
    await add_to_counter(session, Actor, boost.author_id, "statuses_count", -1)
    if booster is not None and booster.kind != GROUP:
        await add_to_counter(session, Post, original.id, "reblogs_count", -1)
        await session.execute(delete(Notification).where(
            Notification.kind == "reblog", Notification.from_actor_id == boost.author_id,
            Notification.post_id == original.id))
    await session.refresh(original)


# --- favourites -----------------------------------------------------------------------------------

async def create_favourite(session: AsyncSession, actor_id: int, post_id: int) -> Post:
    """Favourite a post the actor may see (idempotent); returns the post favourited."""
    viewer = await audience.load_viewer(session, actor_id)
    post = await get_visible_original(session, viewer, post_id)
    added = await insert_once(session, Favourite, {"id": new_id(), "actor_id": actor_id, "post_id": post.id,
                                                    "created_at": utcnow()}, ["actor_id", "post_id"])
    if added:
        await add_to_counter(session, Post, post.id, "favourites_count", 1)
        await _notify(session, post.author_id, "favourite", actor_id, post.id)
        await federate.favourited(session, actor_id, post.id)
        await session.refresh(post)
    return post


async def delete_favourite(session: AsyncSession, actor_id: int, post_id: int) -> Post:
    """Undo a favourite (idempotent); returns the post."""
    viewer = await audience.load_viewer(session, actor_id)
    post = await get_visible_original(session, viewer, post_id)
    await federate.unfavouriting(session, actor_id, post.id)
    result = await session.execute(delete(Favourite).where(Favourite.actor_id == actor_id,
                                                           Favourite.post_id == post.id))
    if result.rowcount:
        await add_to_counter(session, Post, post.id, "favourites_count", -1)
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
    await federate.post_deleted(session, post)  # first: its recipients come from mentions and follows
    # Counters in the order create_post takes them (author, parent, then boosters and the village), so
    # that concurrent transactions on PostgreSQL lock rows in one order and cannot deadlock.
    await add_to_counter(session, Actor, post.author_id, "statuses_count", -1)
    if post.in_reply_to_id is not None:
        await add_to_counter(session, Post, post.in_reply_to_id, "replies_count", -1)
    boosts = list(await session.execute(select(Post.id, Post.author_id).where(Post.reblog_of_id == post.id)))
    for boost_id, booster_id in boosts:
        await add_to_counter(session, Actor, booster_id, "statuses_count", -1)
        await queue_event(session, Event("delete", boost_id))
    if boosts:
        await session.execute(delete(Post).where(Post.reblog_of_id == post.id))
    streams = status_streams(post, await _post_tags(session, post.id))
    await session.execute(delete(Post).where(Post.id == post.id))
    if post.local:  # partners asking for it later: 410 only when it was public (federation/serving.py)
        session.add(Tombstone(uri=post.uri, deleter_uri=await session.scalar(
            select(Actor.uri).where(Actor.id == post.author_id)), public=post.visibility == PUBLIC))
    await queue_event(session, Event("delete", post.id, streams=streams))
    if post.visibility == DIRECT:
        await _rewind_conversations(session, post)


async def _rewind_conversations(session: AsyncSession, post: Post) -> None:
    """After deleting a direct post, its conversations show the thread's previous direct post."""
    thread_id = post.thread_id or post.id
    previous = await session.scalar(select(func.max(Post.id)).where(
        Post.thread_id == thread_id, Post.visibility == DIRECT, Post.reblog.is_(False)))
    await session.execute(update(Conversation).where(
        Conversation.thread_id == thread_id, Conversation.last_post_id.is_(None)).values(last_post_id=previous),
        execution_options={"synchronize_session": False})


# --- polls ----------------------------------------------------------------------------------------

def parse_poll(options: Sequence[str], expires_in: int | None, multiple: bool, hide_totals: bool) -> PollSpec:
    """Validate a poll as Mastodon does: 2-4 distinct options of at most 50 characters, 5 minutes..1 month."""
    cleaned = [o.replace("\x00", "").strip() for o in options]
    if len(cleaned) < 2:
        raise unprocessable("Validation failed: a poll needs at least 2 options")
    if len(cleaned) > MAX_POLL_OPTIONS:
        raise unprocessable(f"Validation failed: a poll has at most {MAX_POLL_OPTIONS} options")
    if any(not o for o in cleaned):
        raise unprocessable("Validation failed: poll options can't be blank")
    if any(len(o) > MAX_POLL_OPTION_CHARS for o in cleaned):
        raise unprocessable(f"Validation failed: poll options are at most {MAX_POLL_OPTION_CHARS} characters")
    if len(set(cleaned)) != len(cleaned):
        raise unprocessable("Validation failed: poll options must be different")
    if expires_in is None:
        raise unprocessable("Validation failed: poll[expires_in] is missing")
    if not MIN_POLL_SECONDS <= expires_in <= MAX_POLL_SECONDS:
        raise unprocessable("Validation failed: a poll lasts between 5 minutes and one month")
    return PollSpec(tuple(cleaned), expires_in, multiple, hide_totals)


def create_poll(session: AsyncSession, post: Post, spec: PollSpec, start: dt.datetime | None = None) -> Poll:
    """Add the poll row of a post (flushed by the caller)."""
    start = start or utcnow()
    poll = Poll(id=new_id(), post_id=post.id, author_id=post.author_id, options=list(spec.options),
                multiple=spec.multiple, hide_totals=spec.hide_totals,
                expires_at=start + dt.timedelta(seconds=spec.expires_in), created_at=start)
    session.add(poll)
    return poll


def poll_expired(poll: Poll, now: dt.datetime | None = None) -> bool:
    return poll.ended(now or utcnow())


async def vote_in_poll(session: AsyncSession, voter_id: int, poll: Poll, choices: Sequence[int]) -> None:
    """Record a resident's vote (once; several choices only in a multiple-choice poll); 422 otherwise."""
    if poll.author_id == voter_id:
        raise unprocessable("Validation failed: You cannot vote in your own polls")
    if poll_expired(poll):
        raise unprocessable("Validation failed: The poll has already ended")
    unique = list(dict.fromkeys(choices))
    if not unique:
        raise unprocessable("Validation failed: choices is missing")
    if len(unique) > 1 and not poll.multiple:
        raise unprocessable("Validation failed: This poll allows only one choice")
    if any(c < 0 or c >= len(poll.options) for c in unique):
        raise unprocessable("Validation failed: Invalid choice")
    # One vote per account: lock the poll row (PostgreSQL) so two requests cannot both pass the check,
    # and read it again (when partners were last sent its counts).
    await session.execute(select(Poll).where(Poll.id == poll.id).with_for_update()
                          .execution_options(populate_existing=True))
    voted = await session.scalar(select(PollVote.id).where(PollVote.poll_id == poll.id,
                                                           PollVote.actor_id == voter_id).limit(1))
    if voted is not None:
        raise unprocessable("Validation failed: You have already voted on this poll")
    for choice in unique:
        session.add(PollVote(id=new_id(), poll_id=poll.id, actor_id=voter_id, choice=choice))
    await session.flush()
    if not poll.remote and poll.update_due(utcnow()):  # our own poll: partners get the new counts
        await federate.poll_changed(session, poll)


async def close_expired_polls(session: AsyncSession, now: dt.datetime | None = None) -> int:
    """Close the polls that ended by `now`: a `poll` notification to the author and every voter who
    are residents here (a partner's actor has no notifications here), and to partners the final counts.

    For a periodic worker (and called lazily by the polls API); returns how many polls were closed.
    """
    now = now or utcnow()
    polls = list(await session.scalars(
        select(Poll).where(Poll.closed_at.is_(None), Poll.expires_at <= now).order_by(Poll.id)
        .limit(500).with_for_update(skip_locked=True)))
    for poll in polls:
        poll.closed_at = now
        voters = set(await session.scalars(select(PollVote.actor_id).where(
            PollVote.poll_id == poll.id, PollVote.actor_id.in_(select(Actor.id).where(Actor.domain == "")))))
        for recipient in sorted(voters if poll.remote else {poll.author_id, *voters}):
            await _notify(session, recipient, "poll", poll.author_id, poll.post_id)
        if not poll.remote:  # our own poll: partners learn it ended, whatever was sent last
            poll.federated(now)
            await federate.poll_changed(session, poll)
    await session.flush()
    return len(polls)


# --- conversations (direct messages) ----------------------------------------------------------------

async def update_conversations(session: AsyncSession, post: Post, mentions: Sequence[int]) -> None:
    """A direct post updates its thread's conversation for the author and every mentioned reader."""
    readers = await get_readers(session, post, mentions)
    members = {post.author_id, *readers}
    thread_id = post.thread_id or post.id
    existing = {c.actor_id: c for c in await session.scalars(
        select(Conversation).where(Conversation.thread_id == thread_id, Conversation.actor_id.in_(members)))}
    for member in sorted(members):
        conversation = existing.get(member)
        others = set(members) - {member}
        if conversation is None:
            conversation = Conversation(id=new_id(), thread_id=thread_id, actor_id=member, participant_ids=[])
            session.add(conversation)
        conversation.participant_ids = sorted(set(conversation.participant_ids or []) | others)
        conversation.last_post_id = post.id
        conversation.unread = member != post.author_id
        conversation.hidden = False
    await session.flush()


# --- edits ----------------------------------------------------------------------------------------

async def edit_post(session: AsyncSession, post: Post, edit: PostEdit, site: Site) -> Post:
    """Apply an author's edit: text, warning, media, poll; keeps the history (the original first),
    re-computes mentions and tags, notifies those who boosted it and sends `status.update`."""
    text = (edit.text or "").replace("\x00", "")
    spoiler_text = (edit.spoiler_text or "").replace("\x00", "")
    media = await _edited_media(session, post, edit)
    _check_text(text, spoiler_text, has_media=bool(media))
    if media and edit.poll is not None:
        raise unprocessable("Polls cannot be combined with media attachments")
    language = edit.language or post.language
    if language is not None and not LANGUAGE.match(language):
        raise unprocessable("language is not a valid ISO 639 code")
    if not await session.scalar(select(StatusEdit.id).where(StatusEdit.post_id == post.id).limit(1)):
        await _snapshot(session, post, post.created_at)  # the original, first in the history
    await _apply_media_attributes(session, media, edit.media_attributes)
    rendered = await render_text(session, text, site.base_url, site.domain)
    old_mentions = set(await session.scalars(select(Mention.actor_id).where(Mention.post_id == post.id)))
    await session.execute(delete(Mention).where(Mention.post_id == post.id))
    await session.execute(delete(PostTag).where(PostTag.post_id == post.id))
    await _store_mentions_and_tags(session, post, rendered.mentions, rendered.tags)
    await _replace_media(session, post, media)
    await _replace_poll(session, post, edit.poll)
    post.content, post.source, post.spoiler_text = rendered.html, text, spoiler_text
    post.sensitive = bool((edit.sensitive if edit.sensitive is not None else post.sensitive) or spoiler_text)
    post.language = language
    post.edited_at = utcnow()
    await session.flush()
    await _snapshot(session, post, post.edited_at)
    await _notify_new_mentions(session, post, [m for m in rendered.mentions if m not in old_mentions],
                               rendered.mentions)
    boosters = sorted(set(await session.scalars(select(Post.author_id).join(Actor, Actor.id == Post.author_id)
                                                .where(Post.reblog_of_id == post.id, Actor.kind != GROUP))))
    if boosters:  # one `update` notification per post: the latest edit replaces an earlier one
        await session.execute(delete(Notification).where(
            Notification.kind == "update", Notification.post_id == post.id, Notification.recipient_id.in_(boosters)))
    for booster in boosters:
        await _notify(session, booster, "update", post.author_id, post.id)
    await queue_event(session, Event("status.update", post.id, streams=status_streams(post, rendered.tags)))
    await federate.post_updated(session, post)
    return post


async def _edited_media(session: AsyncSession, post: Post, edit: PostEdit) -> list[MediaAttachment]:
    """The media the post will carry: its own current ones it keeps, plus new uploads of the author."""
    current = list(await session.scalars(select(MediaAttachment).where(MediaAttachment.post_id == post.id)
                                         .order_by(MediaAttachment.id)))
    if edit.media_ids is None:
        return current
    wanted = list(dict.fromkeys(edit.media_ids))
    if len(wanted) > MAX_MEDIA:
        raise unprocessable(f"Too many media attachments (maximum is {MAX_MEDIA})")
    kept = {m.id: m for m in current}
    new = await _attachable(session, post.author_id, [i for i in wanted if i not in kept])
    by_id = {**kept, **{m.id: m for m in new}}
    return [by_id[i] for i in wanted]


async def _apply_media_attributes(session: AsyncSession, media: list[MediaAttachment],
                                  attributes: Sequence[dict[str, Any]]) -> None:
    by_id = {str(m.id): m for m in media}
    for attrs in attributes:
        row = by_id.get(str(attrs.get("id", "")))
        if row is None:
            raise unprocessable("media_attributes names media that is not attached to this status")
        description = attrs.get("description")
        if description is not None:
            if not isinstance(description, str) or len(description) > 1500:
                raise unprocessable("Validation failed: description is too long (maximum is 1500 characters)")
            row.description = description.replace("\x00", "")
        if attrs.get("focus") not in (None, ""):
            try:
                row.focus_x, row.focus_y = media_service.parse_focus(attrs["focus"])
            except media_service.MediaError as exc:
                raise unprocessable(str(exc)) from None


async def _replace_media(session: AsyncSession, post: Post, media: list[MediaAttachment]) -> None:
    keep = [m.id for m in media]
    detach = update(MediaAttachment).where(MediaAttachment.post_id == post.id)
    if keep:
        detach = detach.where(MediaAttachment.id.not_in(keep))
    await session.execute(detach.values(post_id=None), execution_options={"synchronize_session": False})
    media_service.attach_media(media, post.id)


async def _replace_poll(session: AsyncSession, post: Post, spec: PollSpec | None) -> None:
    """As Mastodon: same options keep the votes; other options start a new poll; no poll removes it."""
    poll = await session.scalar(select(Poll).where(Poll.post_id == post.id))
    if poll is not None and spec is not None and list(spec.options) == list(poll.options) \
            and spec.multiple == poll.multiple:
        poll.hide_totals = spec.hide_totals
        return
    if poll is not None:
        await session.execute(delete(Poll).where(Poll.id == poll.id))
    if spec is not None:
        create_poll(session, post, spec)
    await session.flush()


async def _snapshot(session: AsyncSession, post: Post, at: dt.datetime) -> None:
    media = list(await session.scalars(select(MediaAttachment).where(MediaAttachment.post_id == post.id)
                                       .order_by(MediaAttachment.id)))
    poll = await session.scalar(select(Poll).where(Poll.post_id == post.id))
    session.add(StatusEdit(id=new_id(), post_id=post.id, author_id=post.author_id, content=post.content,
                           spoiler_text=post.spoiler_text or "", sensitive=bool(post.sensitive),
                           media_ids=[m.id for m in media], media_descriptions=[m.description or "" for m in media],
                           poll_options=list(poll.options) if poll is not None else None, created_at=at))
    await session.flush()


async def _notify_new_mentions(session: AsyncSession, post: Post, mentions: list[int],
                               all_mentions: list[int]) -> None:
    if not mentions:
        return
    readers = await get_readers(session, post, mentions)
    have = set(await session.scalars(select(HomeEntry.owner_id).where(
        HomeEntry.post_id == post.id, HomeEntry.owner_id.in_(readers)))) if readers else set()
    await add_to_homes(session, post.id, post.id, readers - have)
    for actor_id in mentions:
        if actor_id in readers:
            await _notify(session, actor_id, "mention", post.author_id, post.id)
    if post.visibility == DIRECT:
        await update_conversations(session, post, all_mentions)
