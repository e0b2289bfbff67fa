"""Everything about a note from a peer: Create, Update, Delete, Announce, Undo{Announce}; and the
Update/Delete of actors.

Trust (SECURITY.md "Inbox"): a Create's note must be by the signer; an embedded note whose id is on
another host than the signer is not trusted as sent: an Announce's note is kept when its FEP-8b32
proof verifies, otherwise it is fetched again from its origin with a signed GET (partners only).
A Delete that arrives before its Create leaves a Tombstone so the Create is not resurrected later.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, String, bindparam, cast, delete, literal, null, select, union_all

from voisinage.models.actor import GROUP, Actor
from voisinage.models.audience import get_readers
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.counters import add_to_counter
from voisinage.models.db import fast, get_fast, insert_all, insert_new
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import new_id
from voisinage.models.notification import notify
from voisinage.models.post import PUBLIC, Mention, Post, PostTag
from voisinage.models.timeline import add_to_homes, followers_into_homes
from voisinage.models.tombstone import Tombstone

from .. import actors
from ..dispatch import InboxContext, handles
from ..from_ap import ParsedNote, parse_note, same_host, visibility_of
from ..local_keys import get_instance_actor, signer_for
from ..partners import host_of, is_partner
from ..proofs import ProofError, verify_proof
from ..transport import FetchError, HttpStatus
from ..vocab import ACTOR_TYPES, NOTE_TYPES, first, get_id, types_of
from . import relay
from .common import get_actor, get_post
from .media import delete_remote_media, replace_remote_media, store_remote_media
from .poll import refresh_remote_poll, store_remote_poll, take_vote

log = logging.getLogger("voisinage.federation.note")

MAX_RESOLVED_MENTIONS = 10  # unknown mentioned actors fetched per note; the others are dropped


# -- getting a note we can trust ----------------------------------------------------------------


async def fetch_note(ictx: InboxContext, uri: str) -> dict[str, Any] | None:
    """Fetch a note from its origin with a signed GET; None when its host is not a partner."""
    if not await is_partner(ictx.session, host_of(uri)):
        return None
    instance = await get_instance_actor(ictx.session, ictx.ctx)
    _, doc = await ictx.ctx.transport.get_json(uri, sign=signer_for(instance))
    return doc


async def _proof_holds(ictx: InboxContext, note: dict[str, Any]) -> bool:
    """Whether the note carries an FEP-8b32 proof by its own author that verifies."""
    proof = note.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    author = get_id(first(note.get("attributedTo")))
    if not isinstance(method, str) or not author or method.split("#", 1)[0] != author:
        return False
    try:
        _, key = await actors.proof_key_for(ictx.ctx, ictx.session, method)
        return verify_proof(note, lambda _method: key)
    except (ProofError, actors.ApParseError, actors.NotPartner, FetchError):
        return False


async def trusted_note(ictx: InboxContext, obj: Any) -> dict[str, Any] | None:
    """The note document to believe: embedded and from the signer's host, or with a valid proof;
    otherwise fetched again from its origin."""
    uri = get_id(obj)
    if not uri:
        return None
    if isinstance(obj, dict) and types_of(obj) & NOTE_TYPES:
        if same_host(uri, ictx.signer.uri) or await _proof_holds(ictx, obj):
            return obj
    if ictx.ctx.is_local_url(uri):
        return None
    return await fetch_note(ictx, uri)


# -- storing a note -----------------------------------------------------------------------------


class _NoteFacts(NamedTuple):
    post_id: int | None  # the note is stored already
    deleter_uri: str | None  # a Delete of it came first
    groups: dict[str, str]  # {group uri: followers uri} of the known Groups it is addressed to
    mentioned: dict[str, int]  # {uri: actor id} of the known actors it mentions


def _addressed(parsed: ParsedNote) -> set[str]:
    return set(parsed.addresses) | ({parsed.audience} if parsed.audience else set())


async def _note_facts(ictx: InboxContext, parsed: ParsedNote) -> _NoteFacts:
    """What storing a note asks before it writes, in one statement."""
    wanted = sorted(_addressed(parsed))
    post_id = deleter_uri = None
    groups: dict[str, str] = {}
    mentioned: dict[str, int] = {}
    for part, actor_id, uri, followers in await ictx.session.execute(_NOTE_FACTS, {
            "uri": parsed.uri, "groups": wanted, "followers": wanted, "mentions": parsed.mentions}):
        if part == "p":
            post_id = actor_id
        elif part == "d":
            deleter_uri = uri
        elif part == "g":
            groups[uri] = followers or ""
        else:
            mentioned[uri] = actor_id
    return _NoteFacts(post_id, deleter_uri, groups, mentioned)


# (part, id, uri, followers uri): "p" the stored post of the note's uri, "d" who deleted it if a Delete
# came first, "g" the known Groups it is addressed to, "m" the known actors it mentions.
_NOTE_FACTS = fast(union_all(
    select(literal("p"), Post.id, cast(null(), String), cast(null(), String)).where(Post.uri == bindparam("uri")),
    select(literal("d"), cast(null(), BigInteger), Tombstone.deleter_uri, cast(null(), String))
    .where(Tombstone.uri == bindparam("uri")),
    select(literal("g"), Actor.id, Actor.uri, Actor.followers_uri).where(
        Actor.kind == GROUP, Actor.uri.in_(bindparam("groups", expanding=True))
        | Actor.followers_uri.in_(bindparam("followers", expanding=True))),
    select(literal("m"), Actor.id, Actor.uri, cast(null(), String))
    .where(Actor.uri.in_(bindparam("mentions", expanding=True)))))


async def _followers_of(ictx: InboxContext, actor_id: int) -> set[int]:
    return set(await ictx.session.scalars(_FOLLOWERS, {"target": actor_id}))


_FOLLOWERS = fast(select(Follow.follower_id).where(Follow.target_id == bindparam("target"), Follow.state == ACCEPTED))


async def store_note(ictx: InboxContext, doc: dict[str, Any]) -> Post | None:
    """The Post of a trusted note document: the existing row, or a new one with its fan-in."""
    parsed = parse_note(doc)
    facts = await _note_facts(ictx, parsed)
    if facts.post_id is not None:
        return await get_post(ictx.session, parsed.uri)  # the existing row (rare: most notes are new)
    if facts.deleter_uri is not None and facts.deleter_uri == parsed.author_uri:
        log.info("note %s was deleted by its author before it arrived: not stored", parsed.uri)
        return None
    author = await actors.get_remote_actor(ictx.ctx, ictx.session, parsed.author_uri, loaded=ictx.signer,
                                           loaded_host_is_partner=ictx.signer_host_is_partner)
    groups = facts.groups
    if author.kind == GROUP and author.uri not in groups and {author.uri, author.followers_uri} & _addressed(parsed):
        groups = {**groups, author.uri: author.followers_uri or ""}  # a Group fetched just now, to its audience
    visibility, group_uri = visibility_of(parsed, author.followers_uri, groups)
    group = await get_actor(ictx.session, group_uri)
    parent = await get_post(ictx.session, parsed.in_reply_to_uri)
    post_id = new_id()
    post = await insert_new(
        ictx.session, Post, id=post_id, uri=parsed.uri, url=parsed.url, author_id=author.id, local=False,
        visibility=visibility, audience_id=group.id if group else None, origin_author_id=author.id,
        in_reply_to_id=parent.id if parent else None, in_reply_to_account_id=parent.author_id if parent else None,
        in_reply_to_uri=parsed.in_reply_to_uri, thread_id=(parent.thread_id or parent.id) if parent else post_id,
        content=parsed.content, spoiler_text=parsed.spoiler_text, sensitive=parsed.sensitive,
        language=parsed.language, created_at=parsed.published or utcnow())
    await store_remote_media(ictx.session, post, parsed.attachments)
    if parsed.poll is not None:
        await store_remote_poll(ictx.session, post, parsed.poll)
    mentioned = await _store_mentions_and_tags(ictx, post, parsed, facts.mentioned)
    await add_to_counter(ictx.session, Actor, author.id, "statuses_count", 1)
    if parent is not None:
        await add_to_counter(ictx.session, Post, parent.id, "replies_count", 1)
    await _fan_in(ictx, post, author, mentioned, parent)
    await relay.relay_note(ictx, post, doc)  # a thread of one of our villages: the village announces it
    return post


async def _mentioned_ids(ictx: InboxContext, uris: list[str], known: dict[str, int]) -> set[int]:
    """The actors a note mentions: the `known` ones, plus up to MAX_RESOLVED_MENTIONS unknown ones
    (stored since, or fetched from partners, signed); a mention that cannot be fetched is dropped,
    never the note."""
    known = dict(known)
    unknown = [u for u in uris if u not in known and not ictx.ctx.is_local_url(u)]
    for uri in unknown[:MAX_RESOLVED_MENTIONS]:
        try:
            known[uri] = (await actors.get_remote_actor(ictx.ctx, ictx.session, uri)).id
        except (actors.NotPartner, actors.ApParseError, actors.UnknownActor, FetchError) as exc:
            log.info("mention of %s dropped: %s", uri[:200], exc)
    return set(known.values())


async def _store_mentions_and_tags(ictx: InboxContext, post: Post, parsed: ParsedNote,
                                   known: dict[str, int]) -> set[int]:
    mentioned = await _mentioned_ids(ictx, parsed.mentions, known)
    await insert_all(ictx.session, Mention, [{"post_id": post.id, "actor_id": actor_id} for actor_id in mentioned])
    await insert_all(ictx.session, PostTag, [{"post_id": post.id, "name": name, "canonical": canonical(name)[:100]}
                                             for name in dict.fromkeys(n for n in parsed.hashtags if n)])
    return mentioned


async def _fan_in(ictx: InboxContext, post: Post, author: Actor, mentioned: set[int], parent: Post | None) -> None:
    """Home timelines of local readers who follow the author or are mentioned; mention notices.

    The visibility rule is asked about these candidates only (the author's followers in one statement,
    the few mentioned and the parent's author in another), never about every local actor."""
    told = set(mentioned)
    if parent is not None:
        told.add(parent.author_id)
    told &= await get_readers(ictx.session, post, among=told) if told else set()
    await followers_into_homes(ictx.session, post, author.id, also=told & mentioned)
    for recipient in sorted(told):
        await notify(ictx.session, recipient, "mention", author.id, post.id)


# -- handlers -----------------------------------------------------------------------------------


@handles("Create")
async def on_create(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A new note by the signer."""
    obj = first(activity.get("object"))
    if isinstance(obj, dict) and not types_of(obj) & NOTE_TYPES:
        return
    doc = await trusted_note(ictx, obj)
    if doc is None:
        return
    if parse_note(doc).author_uri != ictx.signer.uri:
        log.info("Create by %s of a note it did not write: ignored", ictx.signer.uri)
        return
    if await take_vote(ictx, doc):
        return  # a vote in one of our polls is counted, never stored as a post
    await store_note(ictx, doc)


@handles("Announce")
async def on_announce(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A boost by the signer (a remote village announcing a post of its audience, or a person)."""
    if await get_post(ictx.session, str(activity["id"])) is not None:
        return
    obj = first(activity.get("object"))
    if isinstance(obj, dict) and "Create" in types_of(obj):
        obj = first(obj.get("object"))  # Lemmy: a group announces the whole Create, not the note
    if ictx.ctx.is_local_url(get_id(obj) or ""):
        # a boost of one of our posts: looked up here, never fetched; only public posts leave us
        original = await get_post(ictx.session, ictx.ctx.canonical_url(get_id(obj)))
        if original is None or not original.local or original.visibility != PUBLIC:
            return
    else:
        doc = await trusted_note(ictx, obj)
        original = await store_note(ictx, doc) if doc is not None else None
    if original is None or original.reblog_of_id is not None:
        return
    booster = ictx.signer
    boost = await insert_new(ictx.session, Post, id=new_id(), uri=str(activity["id"]), author_id=booster.id,
                             local=False, visibility=original.visibility, audience_id=original.audience_id,
                             origin_author_id=original.origin_author_id, reblog=True, reblog_of_id=original.id,
                             created_at=utcnow())
    readers = await get_readers(ictx.session, boost)
    if not booster.is_group:
        readers &= await _followers_of(ictx, booster.id)
        await add_to_counter(ictx.session, Post, original.id, "reblogs_count", 1)
        author = await get_fast(ictx.session, Actor, original.author_id)
        if author is not None and author.local:
            await notify(ictx.session, author.id, "reblog", booster.id, original.id)
    await add_to_homes(ictx.session, boost.id, original.id, readers)


@handles("Undo", "Announce")
async def on_undo_announce(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """The signer takes back its boost."""
    await undo_announce_by(ictx, get_id(first(activity.get("object"))))


async def undo_announce_by(ictx: InboxContext, uri: str | None) -> bool:
    """Delete the signer's boost with this uri; True when there was one."""
    boost = await get_post(ictx.session, uri)
    if boost is None or boost.author_id != ictx.signer.id or boost.reblog_of_id is None:
        return False
    if not ictx.signer.is_group:
        await add_to_counter(ictx.session, Post, boost.reblog_of_id, "reblogs_count", -1)
    await ictx.session.execute(delete(Post).where(Post.id == boost.id))
    return True


@handles("Announce", "Update")
async def on_announce_update(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A group relays the Update of a note in its thread (FEP-1b12, Lemmy): the note is believed when
    its proof verifies or once fetched again from its origin, then applied as its author's Update."""
    inner = first(activity.get("object"))
    obj = first(inner.get("object")) if isinstance(inner, dict) else None
    post = await _relayed_post(ictx, obj)
    if post is None:
        return
    doc = await trusted_note(ictx, obj)
    author = await get_fast(ictx.session, Actor, post.author_id)
    if doc is not None and author is not None:
        await on_update(InboxContext(ictx.ctx, ictx.session, author), {**inner, "object": doc})


@handles("Announce", "Delete")
async def on_announce_delete(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A group relays the Delete of a note in its thread: believed once the note's origin says it is gone.
    A note not arrived yet leaves a Tombstone by the Delete's actor (on the note's host), so that its
    late Create or Announce is not stored."""
    inner = first(activity.get("object"))
    if not isinstance(inner, dict):
        return
    uri = get_id(first(inner.get("object")))
    post = await _relayed_post(ictx, uri)
    if post is not None:
        if await _gone_at_origin(ictx, post.uri):
            await delete_remote_post(ictx, post)
        return
    author = get_id(first(inner.get("actor")))
    if not ictx.signer.is_group or not uri or not author or not same_host(uri, author) \
            or ictx.ctx.is_local_url(uri) or await get_post(ictx.session, uri) is not None \
            or await _is_actor(ictx, uri):
        return
    if await _gone_at_origin(ictx, uri):
        await _leave_tombstone(ictx, uri, author)


async def _is_actor(ictx: InboxContext, uri: str) -> bool:
    return await ictx.session.scalar(select(Actor.id).where(Actor.uri == uri)) is not None


def _under(uri: str, actor_uri: str | None) -> bool:
    """Whether the uri is under the actor's own (`.../users/cedar/statuses/1` under `.../users/cedar`)."""
    return bool(actor_uri) and uri.startswith(f"{actor_uri.rstrip('/')}/")


async def _leave_tombstone(ictx: InboxContext, uri: str, deleter_uri: str, *, author: bool = False) -> None:
    """Remember that `deleter_uri` deleted the note `uri` (only the author's tombstone stops the author's
    Create). A tombstone left by someone else gives way when the deleter is known to be the note's
    `author`, or when the uri is under the deleter's own and not under the previous deleter's."""
    tombstone = await ictx.session.get(Tombstone, uri)
    if tombstone is None:
        ictx.session.add(Tombstone(uri=uri, deleter_uri=deleter_uri))
    elif tombstone.deleter_uri != deleter_uri and (
            author or (_under(uri, deleter_uri) and not _under(uri, tombstone.deleter_uri))):
        tombstone.deleter_uri = deleter_uri
    await ictx.session.flush()


async def _relayed_post(ictx: InboxContext, obj: Any) -> Post | None:
    """Our copy of a partner's note in the signer's thread: only a thread's own group relays changes."""
    post = await get_post(ictx.session, get_id(obj))
    if post is None or post.local or post.audience_id != ictx.signer.id:
        return None
    return post


async def _gone_at_origin(ictx: InboxContext, uri: str) -> bool:
    """Whether the note's origin (a partner) answers that it is gone: 404, 410 or a Tombstone."""
    try:
        doc = await fetch_note(ictx, uri)
    except HttpStatus as exc:
        if exc.status in (404, 410):
            return True
        raise
    return doc is not None and "Tombstone" in types_of(doc)


@handles("Update")
async def on_update(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """An edited note, or a changed actor document (new name, new key). Only the owner may update."""
    obj = first(activity.get("object"))
    if types_of(obj) & ACTOR_TYPES:
        if get_id(obj) == ictx.signer.uri:
            await actors.get_remote_actor(ictx.ctx, ictx.session, ictx.signer.uri, refresh=True)
        return
    post = await get_post(ictx.session, get_id(obj))
    if post is None or post.author_id != ictx.signer.id or post.local:
        return  # Mastodon activity/update.rb: someone else's object is a no-op
    doc = await trusted_note(ictx, obj)
    if doc is None:
        return
    parsed = parse_note(doc)
    if parsed.uri != post.uri:
        return
    edited = (post.content, post.spoiler_text, post.sensitive) != (parsed.content, parsed.spoiler_text,
                                                                    parsed.sensitive)
    post.content, post.spoiler_text, post.sensitive = parsed.content, parsed.spoiler_text, parsed.sensitive
    edited = await replace_remote_media(ictx.session, post, parsed.attachments) or edited
    await refresh_remote_poll(ictx.session, post, parsed.poll)
    if edited:  # an Update{Question} with new counts only is not an edit (Mastodon sends them as votes come)
        post.edited_at = utcnow()
    await ictx.session.flush()
    await relay.relay_change(ictx, post, activity)


@handles("Delete")
async def on_delete(ictx: InboxContext, activity: dict[str, Any]) -> None:
    """A deleted note (maybe not arrived yet) or a deleted actor. Only the owner may delete."""
    uri = get_id(first(activity.get("object")))
    if not uri:
        return
    if uri == ictx.signer.uri:
        await _delete_actor_content(ictx, ictx.signer)
        return
    post = await get_post(ictx.session, uri)
    if post is None:
        # not arrived yet: remembered as the signer's deletion; never for an actor's address
        if same_host(uri, ictx.signer.uri) and not await _is_actor(ictx, uri):
            await _leave_tombstone(ictx, uri, ictx.signer.uri)
        return
    if post.author_id != ictx.signer.id or post.local:
        return  # Mastodon activity/delete.rb: not theirs, a no-op
    await relay.relay_change(ictx, post, activity)
    await delete_remote_post(ictx, post)


async def delete_remote_post(ictx: InboxContext, post: Post) -> None:
    """Remove a remote post, its boosts and timeline entries (cascades), and remember its uri."""
    if post.in_reply_to_id is not None:
        await add_to_counter(ictx.session, Post, post.in_reply_to_id, "replies_count", -1)
    await add_to_counter(ictx.session, Actor, post.author_id, "statuses_count", -1)
    await ictx.session.execute(delete(Post).where(Post.reblog_of_id == post.id))
    await delete_remote_media(ictx.session, post_id=post.id)
    await ictx.session.execute(delete(Post).where(Post.id == post.id))
    author = await get_fast(ictx.session, Actor, post.author_id)
    await _leave_tombstone(ictx, post.uri, author.uri if author is not None else ictx.signer.uri, author=True)


async def _delete_actor_content(ictx: InboxContext, actor: Actor) -> None:
    """A remote actor deleted itself: its posts and follows go; the row stays, suspended."""
    await delete_remote_media(ictx.session, actor_id=actor.id)
    await ictx.session.execute(delete(Post).where(Post.author_id == actor.id))
    await ictx.session.execute(delete(Follow).where((Follow.follower_id == actor.id) | (Follow.target_id == actor.id)))
    actor.suspended_at = utcnow()
    await ictx.session.flush()
