"""Our rows as ActivityStreams documents: actors, Notes (with FEP-8b32 proofs) and activities.

Pure functions over loaded rows; nothing here touches the database or the network. Addressing
follows DESIGN.md "Visibility", and `as:Public` never appears: even public posts are addressed to
the village's followers (partners only), never to the whole fediverse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from voisinage.models.actor import APPLICATION, GROUP, Actor
from voisinage.models.media import MediaAttachment
from voisinage.models.poll import Poll
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC, Post

from .local_keys import ed25519_key_id, ed25519_private_key_of, main_key_id
from .proofs import add_proof
from .vocab import (
    AS_CONTEXT,
    CONTEXT,
    DATA_INTEGRITY_CONTEXT,
    MULTIKEY_CONTEXT,
    SECURITY_CONTEXT,
)

ADDRESS_KEYS = ("to", "cc", "audience")

# Actor documents carry Multikey assertion methods (FEP-521a); Notes carry proofs (FEP-8b32).
ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, MULTIKEY_CONTEXT, *CONTEXT[2:]]
NOTE_CONTEXT: list[Any] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, *CONTEXT[2:]]
ACTIVITY_CONTEXT: list[Any] = list(CONTEXT)


def iso(when: dt.datetime) -> str:
    """An xsd:dateTime in UTC with seconds, as Mastodon writes it."""
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


# -- actors -----------------------------------------------------------------------------------


def _public_key(actor: Actor) -> dict[str, Any] | None:
    if not actor.public_key_pem:
        return None
    return {"id": actor.key_id or main_key_id(actor), "owner": actor.uri, "publicKeyPem": actor.public_key_pem}


def _minimal_actor(actor: Actor) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor.uri,
        "type": actor.kind if actor.kind in (GROUP, APPLICATION) else "Person",
        "preferredUsername": actor.username,
        "inbox": actor.inbox_uri,
        "outbox": actor.outbox_uri,
        "followers": actor.followers_uri,
        "endpoints": {"sharedInbox": actor.shared_inbox_uri},
    }
    key = _public_key(actor)
    if key is not None:
        doc["publicKey"] = key
    return {k: v for k, v in doc.items() if v is not None}


def _image(url: str | None) -> dict[str, Any] | None:
    return {"type": "Image", "url": url} if url else None


def _attachments(actor: Actor) -> list[dict[str, Any]]:
    return [{"type": "PropertyValue", "name": str(f.get("name", "")), "value": str(f.get("value", ""))}
            for f in (actor.fields or []) if isinstance(f, dict)]


def actor_to_ap(actor: Actor, *, full: bool, village_name: str | None, moderators: list[str]) -> dict[str, Any]:
    """The document of one of our actors; `full=False` is what unsigned requests get (SECURITY "Serving")."""
    doc = _minimal_actor(actor)
    if not full:
        return doc
    doc.update({
        "name": (village_name if actor.kind == GROUP and village_name else actor.display_name) or actor.username,
        "summary": actor.note or "",
        "url": actor.url or actor.uri,
        "manuallyApprovesFollowers": True if actor.kind == GROUP else bool(actor.locked),
        "discoverable": bool(actor.discoverable),
        "published": iso(actor.created_at) if actor.created_at else None,
        "following": f"{actor.uri}/following" if actor.kind != APPLICATION else None,
        "icon": _image(actor.avatar_url),
        "image": _image(actor.header_url),
        "attachment": _attachments(actor) or None,
    })
    if actor.kind == GROUP:
        # FEP-1b12 / Lemmy: the group's moderators; only they post in it (residents post, the village
        # announces), so Lemmy shows the community as restricted.
        doc["attributedTo"] = list(moderators)
        doc["moderators"] = list(moderators)
        doc["postingRestrictedToMods"] = True
    if actor.ed25519_public_multikey:
        doc["assertionMethod"] = [{"id": ed25519_key_id(actor), "type": "Multikey", "controller": actor.uri,
                                   "publicKeyMultibase": actor.ed25519_public_multikey}]
    return {k: v for k, v in doc.items() if v is not None}


# -- notes ------------------------------------------------------------------------------------


def note_addressing(post: Post, author: Actor, mentions: list[Actor], audience: Actor | None) -> dict[str, Any]:
    """to / cc / audience of a post, per DESIGN.md "Visibility". Raises ValueError for unlisted."""
    mentioned = [m.uri for m in mentions if m.uri != author.uri]
    if post.visibility == PUBLIC and audience is not None:
        cc = [author.followers_uri, *mentioned] if author.uri != audience.uri else mentioned
        return {"to": [audience.followers_uri], "cc": _unique(cc), "audience": audience.uri}
    if post.visibility in (PUBLIC, PRIVATE):  # a public post without village goes to followers only
        return {"to": [author.followers_uri], "cc": []}
    if post.visibility == DIRECT:
        return {"to": _unique(mentioned), "cc": []}
    raise ValueError(f"{post.visibility} posts are never federated")


def _unique(values: Sequence[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def _tags(mentions: list[Actor], tags: list[str], base_url: str, domain: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for actor in mentions:
        handle = f"@{actor.username}@{actor.domain or domain}"
        found.append({"type": "Mention", "href": actor.uri, "name": handle})
    for tag in tags:
        name = tag.lstrip("#")
        found.append({"type": "Hashtag", "href": f"{base_url}/tags/{name}", "name": f"#{name}"})
    return found


def _domain_of(base_url: str) -> str:
    return base_url.split("://", 1)[-1].split("/", 1)[0]


def attachment_of(media: MediaAttachment, url: str) -> dict[str, Any]:
    """One of our media as Mastodon sends it: a Document at `url` (the stored original), its alt
    text as `name` (null when there is none), blurhash, size and focal point."""
    doc: dict[str, Any] = {"type": "Document", "mediaType": media.content_type, "url": url,
                           "name": media.description or None}
    if media.blurhash:
        doc["blurhash"] = media.blurhash
    if media.width > 0 and media.height > 0:
        doc["width"], doc["height"] = media.width, media.height
    doc["focalPoint"] = [media.focus_x, media.focus_y]
    return doc


def question_of(poll: Poll, counts: Sequence[int], voters: int) -> dict[str, Any]:
    """The fields that make a Note a Question, as Mastodon sends them: `oneOf` (`anyOf` for multiple
    choice) with each option's votes, `endTime`, `closed` once closed, `votersCount`. The counts are
    the real ones even while a poll hiding its totals runs, as Mastodon sends them (apps hide them)."""
    options = [{"type": "Note", "name": title,
                "replies": {"type": "Collection", "totalItems": counts[i] if i < len(counts) else 0}}
               for i, title in enumerate(poll.options)]
    fields: dict[str, Any] = {"type": "Question", ("anyOf" if poll.multiple else "oneOf"): options,
                              "votersCount": voters}
    if poll.expires_at is not None:
        fields["endTime"] = iso(poll.expires_at)
    if poll.closed_at is not None:
        fields["closed"] = iso(poll.closed_at)
    return fields


def post_to_note(post: Post, author: Actor, *, mentions: list[Actor], tags: list[str], audience: Actor | None,
                 in_reply_to_uri: str | None, base_url: str, attachments: Sequence[dict[str, Any]] = (),
                 question: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Note of one of our posts, signed with the author's Ed25519 key (FEP-8b32 proof); with its
    media (`attachment_of`) and, for a poll, a Question (`question_of`). The proof covers it all.

    The author must have keys (`local_keys.ensure_local_keys`). Raises ValueError for unlisted posts.
    """
    note: dict[str, Any] = {
        "@context": NOTE_CONTEXT,
        "id": post.uri,
        "type": "Note",
        "attributedTo": author.uri,
        **note_addressing(post, author, mentions, audience),
        "inReplyTo": in_reply_to_uri,
        "content": post.content,
        "published": iso(post.created_at),
        "updated": iso(post.edited_at) if post.edited_at else None,
        "url": post.url or post.uri,
        "sensitive": bool(post.sensitive),
        "summary": post.spoiler_text or None,
        "tag": _tags(mentions, tags, base_url, _domain_of(base_url)),
    }
    if post.language:
        note["contentMap"] = {post.language: post.content}
    if attachments:
        note["attachment"] = list(attachments)
    note.update(question or {})
    note = {k: v for k, v in note.items() if v is not None}
    created = post.edited_at or post.created_at
    return add_proof(note, ed25519_key_id(author), ed25519_private_key_of(author), created=created)


def addressing_of(document: dict[str, Any]) -> dict[str, Any]:
    """The to / cc / audience of a document, to copy onto the activity that carries it."""
    return {key: document[key] for key in ADDRESS_KEYS if key in document}


# -- activities -------------------------------------------------------------------------------


def _activity(kind: str, activity_id: str, actor: Actor, obj: Any, addressing: dict[str, Any],
              published: str | None = None) -> dict[str, Any]:
    activity: dict[str, Any] = {"@context": ACTIVITY_CONTEXT, "id": activity_id, "type": kind, "actor": actor.uri,
                                **addressing, "object": obj}
    if published:
        activity["published"] = published
    return activity


def create_of(note: dict[str, Any], author: Actor) -> dict[str, Any]:
    """Create{Note}; id `<note>/activity` (as Mastodon)."""
    return _activity("Create", f"{note['id']}/activity", author, note, addressing_of(note), note.get("published"))


def update_of(note: dict[str, Any], author: Actor) -> dict[str, Any]:
    """Update{Note} after an edit; the id changes with the note's content."""
    stamp = note.get("updated") or note.get("published") or ""
    return _activity("Update", f"{note['id']}#updates/{_digest([stamp, note.get('content')])}", author, note,
                     addressing_of(note), note.get("updated"))


def question_update_of(question: dict[str, Any], author: Actor) -> dict[str, Any]:
    """Update{Question} with a poll's new counts (or its end); the id changes with them."""
    state = [question.get(key) for key in ("updated", "content", "oneOf", "anyOf", "votersCount", "closed")]
    return _activity("Update", f"{question['id']}#updates/{_digest(state)}", author, question,
                     addressing_of(question))


def delete_of(post_uri: str, author: Actor, addressing: dict[str, Any]) -> dict[str, Any]:
    """Delete{Tombstone} of one of our posts, sent to the post's audience."""
    return _activity("Delete", f"{post_uri}#delete", author, {"id": post_uri, "type": "Tombstone"},
                     {k: v for k, v in addressing.items() if k in ADDRESS_KEYS})


def announce_of(group: Actor, note: dict[str, Any], announce_uri: str) -> dict[str, Any]:
    """A village's Announce of a resident's Note (FEP-1b12): the Note embedded, same addressing."""
    return _activity("Announce", announce_uri, group, note, addressing_of(note), note.get("published"))


def relay_of(group: Actor, obj: dict[str, Any], published: str, announce_uri: str | None = None) -> dict[str, Any]:
    """FEP-1b12: a village's Announce of what a partner sent into its thread: the Note (the shape
    Mastodon understands, as for our residents' posts), or the Update/Delete of it, embedded exactly
    as received so that its FEP-8b32 proof still verifies. Addressed to the village's followers only."""
    uri = announce_uri or f"{group.uri}#relays/{_digest(obj.get('id'))}"
    addressing: dict[str, Any] = {"to": [group.followers_uri]} if group.followers_uri else {}
    return _activity("Announce", uri, group, obj, {**addressing, "audience": group.uri}, published)


def boost_of(booster: Actor, obj: dict[str, Any] | str, boost_uri: str, original_author: str,
             audience: str | None, published: str) -> dict[str, Any]:
    """A resident's boost: Announce of the original (embedded when it is ours, so it carries its
    proof; its id otherwise), to the booster's followers and the original's author, in the
    original's audience."""
    addressing: dict[str, Any] = {"to": _unique([booster.followers_uri]), "cc": [original_author]}
    if audience:
        addressing["audience"] = audience
    return _activity("Announce", boost_uri, booster, obj, addressing, published)


def follow_of(follow_uri: str, follower: Actor, target: Actor) -> dict[str, Any]:
    """Follow of `target` by one of our actors."""
    return _activity("Follow", follow_uri, follower, target.uri, {"to": [target.uri]})


def _reply_to_follow(kind: str, follow: dict[str, Any] | str, actor: Actor) -> dict[str, Any]:
    follow_id = follow if isinstance(follow, str) else str(follow.get("id", ""))
    follower = follow.get("actor") if isinstance(follow, dict) else None
    addressing = {"to": [follower]} if isinstance(follower, str) else {}
    return _activity(kind, f"{actor.uri}#{kind.lower()}s/{_digest(follow_id)}", actor, follow, addressing)


def accept_of(follow: dict[str, Any] | str, actor: Actor) -> dict[str, Any]:
    """Accept of a Follow (embedded, so peers need not fetch it), addressed to the follower."""
    return _reply_to_follow("Accept", follow, actor)


def reject_of(follow: dict[str, Any] | str, actor: Actor) -> dict[str, Any]:
    """Reject of a Follow, addressed to the follower."""
    return _reply_to_follow("Reject", follow, actor)


def undo_of(activity: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Undo of one of our activities (Follow, Like, Announce), embedded without its @context."""
    inner = {k: v for k, v in activity.items() if k != "@context"}
    addressing = addressing_of(activity)
    if not addressing and inner.get("type") == "Follow" and isinstance(inner.get("object"), str):
        addressing = {"to": [inner["object"]]}
    return _activity("Undo", f"{activity['id']}#undo", actor, inner, addressing)


def like_of(like_uri: str, actor: Actor, post_uri: str, addressing: dict[str, Any]) -> dict[str, Any]:
    """Like of a post; `addressing` usually names the post's author."""
    return _activity("Like", like_uri, actor, post_uri, {k: v for k, v in addressing.items() if k in ADDRESS_KEYS})


def person_update_of(actor_doc: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Update of an actor's own document (profile edits, key rotation), to its followers."""
    inner = {k: v for k, v in actor_doc.items() if k != "@context"}
    addressing = {"to": [actor.followers_uri]} if actor.followers_uri else {}
    return _activity("Update", f"{actor.uri}#updates/{_digest(inner)}", actor, inner, addressing)


def vote_of(vote_uri: str, voter: Actor, question_uri: str, poll_author_uri: str, title: str,
            published: dt.datetime) -> dict[str, Any]:
    """A vote in a remote poll as Mastodon sends it: Create{Note} whose `name` is the option's title
    and `inReplyTo` the Question, addressed to the poll's author only; the Note carries a proof."""
    note: dict[str, Any] = {
        "@context": NOTE_CONTEXT, "id": vote_uri, "type": "Note", "name": title, "attributedTo": voter.uri,
        "to": [poll_author_uri], "inReplyTo": question_uri, "published": iso(published),
    }
    note = add_proof(note, ed25519_key_id(voter), ed25519_private_key_of(voter), created=published)
    return create_of(note, voter)
