"""The transactional outbox: render an activity once, and write one Delivery row per receiving inbox.

Everything here runs inside the caller's write transaction, so a post and its deliveries are committed
together (a crash loses neither). Recipients are expanded to unique inboxes, shared inboxes preferred,
skipping instances that are not partners or that are marked unavailable. The delivery worker
(`federation/delivery.py`) sends the rows. [microblog.pub OutgoingActivity; Takahē FanOut]

Who receives a local post (DESIGN.md "Visibility"):
- public: the village's Announce{Note} to the village's remote followers, plus Create{Note} to the
  author's remote followers and mentioned remote actors on inboxes the Announce does not reach;
- private: Create to the author's remote followers and mentioned remote actors;
- direct: Create to the mentioned remote actors only;
- unlisted: nothing, ever (it stays in its village).

A partner's public note in the thread of one of our villages is relayed by that village (FEP-1b12,
`publish_relay`); a resident's boost of a public post is announced only to instances in the original's
audience (`publish_boost`: a boost never widens); profile edits send Update{Person}. A post carries its
media as `attachment` and a poll makes it a Question; a vote in one of our polls (by a resident or a
partner's) and its end send Update{Question} to where the post went (`publish_update(..., poll=True)`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, func, literal_column, select, union_all
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from voisinage.models.actor import GROUP, Actor
from voisinage.models.base import utcnow
from voisinage.models.db import fast, get_fast, insert_all, load_all_fast
from voisinage.models.delivery import Delivery, OutgoingActivity
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.ids import new_id
from voisinage.models.instance import Instance
from voisinage.models.interaction import Favourite
from voisinage.models.media import MediaAttachment
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC, Mention, Post, relation_parts
from voisinage.models.village import Village
from voisinage.server.services.media import media_url

from . import to_ap
from .context import FederationContext
from .local_keys import ensure_local_keys
from .partners import host_of
from .serving import get_moderators


async def publish(session: AsyncSession, ctx: FederationContext, activity: dict[str, Any], signer: Actor,
                  inboxes: Iterable[str]) -> int | None:
    """Store `activity` once and one pending Delivery per deliverable inbox; returns the stored
    activity's id, None when no inbox is deliverable."""
    targets = await deliverable_inboxes(session, ctx, inboxes)
    if not targets:
        return None
    await ensure_local_keys(session, signer)
    outgoing_id, now = new_id(), utcnow()
    await insert_all(session, OutgoingActivity, [{"id": outgoing_id, "activity_uri": str(activity.get("id", "")),
                                                  "signer_id": signer.id, "body": orjson.dumps(activity),
                                                  "created_at": now}])
    # one executemany (a village post to fifty partners is fifty rows; the unit of work took 15 ms)
    await insert_all(session, Delivery, [{"id": new_id(), "outgoing_id": outgoing_id, "inbox_uri": inbox, "host": host,
                                          "next_attempt_at": now, "created_at": now} for inbox, host in targets])
    if ctx.wake is not None:  # the delivery loops start at the commit, not at their next poll
        session.info.setdefault(_WAKE_AFTER_COMMIT, set()).add(ctx.wake)
    return outgoing_id


_WAKE_AFTER_COMMIT = "wake_after_commit"


@sa_event.listens_for(Session, "after_commit")
def _wake_workers(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (SQLAlchemy tells it as a commit): the transaction goes on
    for wake in session.info.pop(_WAKE_AFTER_COMMIT, ()):
        wake.set()


async def deliverable_inboxes(session: AsyncSession, ctx: FederationContext,
                              inboxes: Iterable[str]) -> list[tuple[str, str]]:
    """(inbox, host) for each unique remote inbox of a partner instance that is not unavailable."""
    by_host: dict[str, list[str]] = {}
    for inbox in dict.fromkeys(i for i in inboxes if i):
        if ctx.is_local_url(inbox):
            continue
        try:
            by_host.setdefault(host_of(inbox), []).append(inbox)
        except ValueError:
            continue  # not an http(s) URL: never delivered
    if not by_host:
        return []
    allowed = set(await session.scalars(_DELIVERABLE, {"hosts": list(by_host)}))
    return [(inbox, host) for host, found in by_host.items() if host in allowed for inbox in found]


_DELIVERABLE = fast(select(Instance.host).where(
    Instance.host.in_(bindparam("hosts", expanding=True)), Instance.partner.is_(True), Instance.blocked.is_(False),
    Instance.unavailable_since.is_(None)))


def inbox_of(actor: Actor) -> str | None:
    """Where to deliver to a remote actor: its shared inbox when it has one."""
    return actor.shared_inbox_uri or actor.inbox_uri


async def follower_inboxes(session: AsyncSession, target_id: int) -> list[str]:
    """The delivery inboxes (shared ones preferred, each once) of the remote actors with an accepted
    follow of `target_id`: one fast statement, no Actor rows loaded."""
    return list(dict.fromkeys(i for i in await session.scalars(_FOLLOWER_INBOXES, {"target": target_id}) if i))


def _remote_followers(query: Any, target: str) -> Any:
    """`query` (over Actor) narrowed to the remote actors with an accepted follow of the actor whose id
    is the bind parameter `target`."""
    return (query.join(Follow, Follow.follower_id == Actor.id)
            .where(Follow.target_id == bindparam(target), Follow.state == ACCEPTED, Actor.domain != ""))


_FOLLOWER_INBOXES = fast(_remote_followers(
    select(func.coalesce(func.nullif(Actor.shared_inbox_uri, ""), Actor.inbox_uri)), "target"))


async def _load(session: AsyncSession, actor_id: int | None) -> Actor | None:
    if actor_id is None:
        return None
    return await get_fast(session, Actor, actor_id)


# A post's mentioned actors and tags, and whether it has media or a poll: one round trip, and the media,
# mentioned actors and poll only for a post that has some (four round trips for every post before).
_RELATIONS = fast(union_all(*relation_parts(bindparam("ids", expanding=True))))
_MENTIONED = select(Actor).where(Actor.id.in_(bindparam("ids", expanding=True))).order_by(Actor.id)
_MEDIA = select(MediaAttachment).where(MediaAttachment.post_id == bindparam("post")).order_by(MediaAttachment.id)


@dataclass(frozen=True)
class NewPost:
    """What posting has at hand of a post it just stored, so that publishing it reads none of it back:
    the actors it mentions (ids), its hashtags as stored, its media, whether it has a poll, and the uri
    of its village's announce (None when its village does not announce it)."""

    mentioned: list[int]
    tags: list[str]
    media: list[MediaAttachment]
    poll: bool
    announce_uri: str | None


async def render_note(session: AsyncSession, ctx: FederationContext, post: Post,
                      new: NewPost | None = None, *, make_keys: bool = True) -> tuple[dict[str, Any], Actor]:
    """The Note (a Question for a poll) of a local post, with its media and its FEP-8b32 proof, and its
    loaded author. A bounded number of queries, whatever the media and votes; fewer with `new`.
    An author without keys gets them (a write), or without `make_keys` KeysMissing is raised."""
    author = await get_fast(session, Actor, post.author_id)
    assert author is not None
    await ensure_local_keys(session, author, make=make_keys)
    audience = await _load(session, post.audience_id)
    if new is None:
        mentioned, tags, media, poll = await _relations(session, post)
    else:
        mentioned, tags, media, poll = new.mentioned, new.tags, sorted(new.media, key=lambda m: m.id), new.poll
    attachments = [to_ap.attachment_of(m, media_url(m, ctx.base_url)) for m in media]
    mentions = list(await session.scalars(_MENTIONED, {"ids": mentioned})) if mentioned else []
    # mentions and tags in one order whichever way they came (a Create and its later Updates alike)
    note = to_ap.post_to_note(post, author, mentions=mentions, tags=sorted(tags), audience=audience,
                              in_reply_to_uri=await _reply_uri(session, post), base_url=ctx.base_url,
                              attachments=attachments,
                              question=await _question(session, post) if poll else None)
    return note, author


async def _relations(session: AsyncSession, post: Post) -> tuple[list[int], list[str], list[MediaAttachment], bool]:
    """A stored post's mentioned actors (ids), hashtags, media (in upload order) and whether it has a poll."""
    mentioned: list[int] = []
    tags: list[str] = []
    kinds: set[str] = set()
    for kind, _, actor_id, name in await session.execute(_RELATIONS, {"ids": [post.id]}):
        kinds.add(kind)
        if kind == "m":
            mentioned.append(actor_id)
        elif kind == "t":
            tags.append(name)
    media = list(await session.scalars(_MEDIA, {"post": post.id})) if "a" in kinds else []
    return mentioned, tags, media, "q" in kinds


async def _question(session: AsyncSession, post: Post) -> dict[str, Any] | None:
    """The Question fields of a local post's poll with its counts (three queries), None without a poll."""
    poll = await session.scalar(_POLL, {"post": post.id})
    if poll is None:
        return None
    tally = dict((await session.execute(select(PollVote.choice, func.count()).where(PollVote.poll_id == poll.id)
                                        .group_by(PollVote.choice))).tuples().all())
    voters = await session.scalar(select(func.count(func.distinct(PollVote.actor_id)))
                                  .where(PollVote.poll_id == poll.id))
    return to_ap.question_of(poll, [tally.get(i, 0) for i in range(len(poll.options))], voters or 0)


_POLL = select(Poll).where(Poll.post_id == bindparam("post"))


async def _reply_uri(session: AsyncSession, post: Post) -> str | None:
    if post.in_reply_to_uri:
        return post.in_reply_to_uri
    if post.in_reply_to_id is None:
        return None
    return await session.scalar(_POST_URI, {"id": post.in_reply_to_id})


async def _announce_uri(session: AsyncSession, village: Actor, post: Post) -> str:
    boost_uri = await session.scalar(_ANNOUNCE_URI, {"village": village.id, "post": post.id})
    return boost_uri or f"{village.uri}/statuses/{post.id}/activity"


_POST_URI = fast(select(Post.uri).where(Post.id == bindparam("id")))
_ACTORS = fast(select(*Actor.__table__.c).where(Actor.id.in_(bindparam("ids", expanding=True))))
_ANNOUNCE_URI = fast(select(Post.uri).where(Post.author_id == bindparam("village"),
                                            Post.reblog_of_id == bindparam("post")))


async def post_recipients(session: AsyncSession, post: Post) -> tuple[int | None, list[str], list[str]]:
    """(announcing village's actor id, inboxes for its Announce, inboxes for the author's Create) of a
    local post."""
    parts: dict[int, list[Any]] = {part: [] for part in range(_PARTS)}
    for row in await session.execute(_RECIPIENTS, {"audience": post.audience_id, "post": post.id,
                                                   "parent_author": post.in_reply_to_account_id,
                                                   "author": post.author_id}):
        parts[row.part].append(row)
    group = parts[_AUDIENCE][0] if parts[_AUDIENCE] else None
    mentioned: list[Any] = [a for a in parts[_MENTIONED_ACTORS] if not a.local]
    mentioned += _remote_thread(post, group, parts[_PARENT_AUTHOR])
    if post.visibility == DIRECT:
        return None, [], inboxes_of(mentioned)
    followers = inboxes_of(parts[_AUTHOR_FOLLOWERS])
    if post.visibility == PRIVATE:
        return None, [], list(dict.fromkeys([*followers, *inboxes_of(mentioned)]))
    if post.visibility != PUBLIC:
        return None, [], []  # unlisted never leaves the commune
    village_id = group.id if group is not None and group.local else None
    announce = inboxes_of(parts[_AUDIENCE_FOLLOWERS]) if village_id else []
    create = [i for i in dict.fromkeys([*followers, *inboxes_of(mentioned)]) if i not in set(announce)]
    return village_id, announce, create


# What `post_recipients` reads, in one statement (five round trips to PostgreSQL otherwise), as rows of
# (part, id, local, shared_inbox_uri, inbox_uri): the post's audience (a village: is it ours, and where
# a remote one takes deliveries), the actors it mentions, the author of the post it replies to, and the
# remote followers of its audience and of its author.
_AUDIENCE, _MENTIONED_ACTORS, _PARENT_AUTHOR, _AUDIENCE_FOLLOWERS, _AUTHOR_FOLLOWERS, _PARTS = range(6)


def _recipient_rows(part: int) -> Any:
    return select(literal_column(str(part)).label("part"), Actor.id, (Actor.domain == "").label("local"),
                  Actor.shared_inbox_uri, Actor.inbox_uri)


_RECIPIENTS = fast(union_all(
    _recipient_rows(_AUDIENCE).where(Actor.id == bindparam("audience")),
    _recipient_rows(_MENTIONED_ACTORS).join(Mention, Mention.actor_id == Actor.id)
    .where(Mention.post_id == bindparam("post")),
    _recipient_rows(_PARENT_AUTHOR).where(Actor.id == bindparam("parent_author")),
    _remote_followers(_recipient_rows(_AUDIENCE_FOLLOWERS), "audience"),
    _remote_followers(_recipient_rows(_AUTHOR_FOLLOWERS), "author")))


def _remote_thread(post: Post, group: Any, parent_author: list[Any]) -> list[Any]:
    """The remote author of the post replied to, and for a public post the remote village (`group`,
    the post's audience row) whose thread it joins (FEP-1b12: the group announces the reply to its
    followers)."""
    found: list[Any] = []
    if parent_author and not parent_author[0].local and post.visibility != DIRECT:
        found.append(parent_author[0])
    if group is not None and not group.local and post.visibility == PUBLIC:
        found.append(group)
    return found


def inboxes_of(actors: Iterable[Actor]) -> list[str]:
    """The unique delivery inboxes of these actors (shared inboxes preferred)."""
    return list(dict.fromkeys(i for i in (inbox_of(a) for a in actors) if i))


async def publish_post(session: AsyncSession, ctx: FederationContext, post: Post,
                       new: NewPost | None = None) -> None:
    """Deliver a new local post to the remote instances that may read it (see the module docstring);
    `new`: what posting knows of it, not read back."""
    village_id, announce_inboxes, create_inboxes = await post_recipients(session, post)
    if not announce_inboxes and not create_inboxes:
        return
    # The author and the announcing village (the note's audience) in one statement, before the note:
    # kept here, they are the rows the note finds in the session (which keeps only rows in use).
    actors = {actor.id: actor for actor in await load_all_fast(
        session, Actor, _ACTORS, {"ids": [post.author_id, village_id] if announce_inboxes else [post.author_id]})}
    village = actors.get(village_id)  # loaded only when it announces
    note, author = await render_note(session, ctx, post, new)
    if village is not None:
        uri = new.announce_uri if new is not None and new.announce_uri else await _announce_uri(session, village, post)
        await publish(session, ctx, to_ap.announce_of(village, note, uri), village, announce_inboxes)
    if create_inboxes:
        await publish(session, ctx, to_ap.create_of(note, author), author, create_inboxes)


async def publish_update(session: AsyncSession, ctx: FederationContext, post: Post, *, poll: bool = False) -> None:
    """Deliver an edit of a local post to everyone who received it; with `poll`, Update{Question} with
    the current counts (or the end) of its poll."""
    if poll and not post.local:
        return
    _, announce_inboxes, create_inboxes = await post_recipients(session, post)
    inboxes = [*announce_inboxes, *create_inboxes]
    if not inboxes:
        return
    note, author = await render_note(session, ctx, post)
    update = to_ap.question_update_of(note, author) if poll else to_ap.update_of(note, author)
    await publish(session, ctx, update, author, inboxes)


async def publish_delete(session: AsyncSession, ctx: FederationContext, post: Post) -> None:
    """Deliver the deletion of a local post to everyone who received it (call before deleting rows)."""
    _, announce_inboxes, create_inboxes = await post_recipients(session, post)
    inboxes = [*announce_inboxes, *create_inboxes]
    if not inboxes:
        return
    author = await get_fast(session, Actor, post.author_id)
    assert author is not None
    note, _ = await render_note(session, ctx, post)
    addressing: dict[str, Any] = {key: note[key] for key in ("to", "cc", "audience") if key in note}
    await publish(session, ctx, to_ap.delete_of(post.uri, author, addressing), author, inboxes)


async def publish_follow(session: AsyncSession, ctx: FederationContext, follow: Follow) -> None:
    """Send a Follow of a remote actor by a local one; gives the follow its uri when it has none."""
    follower, target = await _pair(session, follow)
    if follower is None or target is None or target.local:
        return
    if not follow.uri:
        follow.uri = f"{follower.uri}#follows/{follow.id}"
        await session.flush()
    activity = to_ap.follow_of(follow.uri, follower, target)
    await publish(session, ctx, activity, follower, inboxes_of([target]))


async def publish_undo_follow(session: AsyncSession, ctx: FederationContext, follow: Follow) -> None:
    """Withdraw a Follow of a remote actor (call before deleting the row)."""
    follower, target = await _pair(session, follow)
    if follower is None or target is None or target.local:
        return
    uri = follow.uri or f"{follower.uri}#follows/{follow.id}"
    activity = to_ap.undo_of(to_ap.follow_of(uri, follower, target), follower)
    await publish(session, ctx, activity, follower, inboxes_of([target]))


async def _pair(session: AsyncSession, follow: Follow) -> tuple[Actor | None, Actor | None]:
    return await _load(session, follow.follower_id), await _load(session, follow.target_id)


async def publish_accept(session: AsyncSession, ctx: FederationContext, follow: Follow,
                         follow_activity: dict[str, Any] | str | None = None) -> None:
    """Tell a remote follower that a local actor accepted its Follow."""
    follower, target = await _pair(session, follow)
    if follower is None or target is None or follower.local:
        return
    activity = to_ap.accept_of(follow_activity or _follow_doc(follow, follower, target), target)
    await publish(session, ctx, activity, target, inboxes_of([follower]))


async def publish_reject(session: AsyncSession, ctx: FederationContext, follow: Follow,
                         follow_activity: dict[str, Any] | str | None = None) -> None:
    """Tell a remote follower that a local actor refused (or removed) its Follow."""
    follower, target = await _pair(session, follow)
    if follower is None or target is None or follower.local:
        return
    activity = to_ap.reject_of(follow_activity or _follow_doc(follow, follower, target), target)
    await publish(session, ctx, activity, target, inboxes_of([follower]))


def _follow_doc(follow: Follow, follower: Actor, target: Actor) -> dict[str, Any]:
    return to_ap.follow_of(follow.uri or f"{follower.uri}#follows/{follow.id}", follower, target)


async def _like_parts(session: AsyncSession, favourite: Favourite) -> tuple[Actor, Post, Actor] | None:
    actor = await _load(session, favourite.actor_id)
    post = await session.get(Post, favourite.post_id)
    if actor is None or post is None or post.local:
        return None
    author = await _load(session, post.author_id)
    return (actor, post, author) if author is not None else None


def _like_uri(actor: Actor, favourite: Favourite) -> str:
    return favourite.uri or f"{actor.uri}#likes/{favourite.id}"


async def publish_like(session: AsyncSession, ctx: FederationContext, favourite: Favourite) -> None:
    """Send a Like of a remote post to its author's instance."""
    parts = await _like_parts(session, favourite)
    if parts is None:
        return
    actor, post, author = parts
    if not favourite.uri:
        favourite.uri = _like_uri(actor, favourite)
        await session.flush()
    activity = to_ap.like_of(_like_uri(actor, favourite), actor, post.uri, {"to": [author.uri]})
    await publish(session, ctx, activity, actor, inboxes_of([author]))


async def publish_undo_like(session: AsyncSession, ctx: FederationContext, favourite: Favourite) -> None:
    """Withdraw a Like of a remote post (call before deleting the row)."""
    parts = await _like_parts(session, favourite)
    if parts is None:
        return
    actor, post, author = parts
    like = to_ap.like_of(_like_uri(actor, favourite), actor, post.uri, {"to": [author.uri]})
    await publish(session, ctx, to_ap.undo_of(like, actor), actor, inboxes_of([author]))


# -- relays, boosts and profile updates -------------------------------------------------------


def _host(url: str) -> str | None:
    try:
        return host_of(url)
    except ValueError:
        return None


async def publish_relay(session: AsyncSession, ctx: FederationContext, village: Actor, obj: dict[str, Any],
                        origin_host: str, published: str, announce_uri: str | None = None) -> None:
    """FEP-1b12: one of our villages announces what a partner sent into its thread (a Note, or the
    Update or Delete of one, as received) to its followers on every instance but the origin's."""
    inboxes = [i for i in await follower_inboxes(session, village.id) if _host(i) != origin_host]
    if inboxes:
        await publish(session, ctx, to_ap.relay_of(village, obj, published, announce_uri), village, inboxes)


async def _audience_hosts(session: AsyncSession, post: Post) -> set[str]:
    """The partner hosts in a public post's audience: those it was delivered to when it is ours;
    otherwise its author's and its village's, and for a thread of one of our villages that
    village's followers' (it relayed the post to them)."""
    if post.local:
        _, announce, create = await post_recipients(session, post)
        inboxes = [*announce, *create]
    else:
        author, group = await _load(session, post.author_id), await _load(session, post.audience_id)
        inboxes = [a.uri for a in (author, group) if a is not None and not a.local]
        if group is not None and group.local:
            inboxes += await follower_inboxes(session, group.id)
    return {host for host in map(_host, inboxes) if host}


async def _boost_parts(session: AsyncSession, boost: Post) -> tuple[Actor, Post, Actor, list[str]] | None:
    """(booster, original, its author, inboxes) of a resident's boost of a public post.

    A boost never widens an audience (DESIGN.md "Visibility"): the booster's remote followers and the
    original's remote author receive it only on instances that are in the original's audience.
    """
    booster = await _load(session, boost.author_id)
    original = await session.get(Post, boost.reblog_of_id) if boost.reblog_of_id is not None else None
    if booster is None or not booster.local or booster.is_group or original is None:
        return None
    author = await _load(session, original.author_id)
    if author is None or original.visibility != PUBLIC:
        return None
    candidates = list(dict.fromkeys([*await follower_inboxes(session, booster.id),
                                     *([] if author.local else inboxes_of([author]))]))
    hosts = await _audience_hosts(session, original) if candidates else set()
    return booster, original, author, [i for i in candidates if _host(i) in hosts]


async def _boost_activity(session: AsyncSession, ctx: FederationContext, boost: Post, booster: Actor,
                          original: Post, author: Actor, *, embed: bool) -> dict[str, Any]:
    obj: dict[str, Any] | str = original.uri
    if embed and original.local:
        obj, _ = await render_note(session, ctx, original)  # with its proof: receivers need not fetch it
    audience = await _load(session, original.audience_id)
    return to_ap.boost_of(booster, obj, boost.uri, author.uri, audience.uri if audience else None,
                          to_ap.iso(boost.created_at))


async def publish_boost(session: AsyncSession, ctx: FederationContext, boost: Post, *, undo: bool = False) -> None:
    """Send a resident's boost (Announce) where it may go (see `_boost_parts`); with `undo`, withdraw
    it (Undo{Announce}) from there (call before deleting the row)."""
    parts = await _boost_parts(session, boost)
    if parts is None or not parts[3]:
        return
    booster, original, author, inboxes = parts
    announce = await _boost_activity(session, ctx, boost, booster, original, author, embed=not undo)
    await publish(session, ctx, to_ap.undo_of(announce, booster) if undo else announce, booster, inboxes)


async def publish_undo_boost(session: AsyncSession, ctx: FederationContext, boost: Post) -> None:
    await publish_boost(session, ctx, boost, undo=True)


async def publish_actor_update(session: AsyncSession, ctx: FederationContext, actor: Actor) -> None:
    """Send Update of one of our actors' documents (a profile edit) to the instances that follow it,
    and for a resident also to those that follow its home village (they show its posts)."""
    if not actor.local:
        return
    watchers = await follower_inboxes(session, actor.id)
    village_name: str | None = None
    moderators: list[str] = []
    if actor.kind == GROUP:
        village_name = await session.scalar(select(Village.name).where(Village.id == actor.village_id))
        moderators = await get_moderators(session, actor.village_id)
    elif actor.village_id is not None:
        home = await session.scalar(select(Village.actor_id).where(Village.id == actor.village_id))
        watchers += await follower_inboxes(session, home) if home is not None else []
    inboxes = list(dict.fromkeys(watchers))
    if not inboxes:
        return
    await ensure_local_keys(session, actor)
    document = to_ap.actor_to_ap(actor, full=True, village_name=village_name, moderators=moderators)
    await publish(session, ctx, to_ap.person_update_of(document, actor), actor, inboxes)


async def request_follow(session: AsyncSession, ctx: FederationContext, follower: Actor, target: Actor) -> Follow:
    """A local actor asks to follow a remote one: a pending Follow row (live on Accept) and the Follow
    activity in the outbox. An existing follow is returned as it is (a pending one is sent again)."""
    follow = await session.scalar(select(Follow).where(
        Follow.follower_id == follower.id, Follow.target_id == target.id))
    if follow is None:
        follow = Follow(id=new_id(), follower_id=follower.id, target_id=target.id, state="pending")
        session.add(follow)
        await session.flush()
    if follow.state != ACCEPTED:
        await publish_follow(session, ctx, follow)
    return follow


async def publish_vote(session: AsyncSession, ctx: FederationContext, poll: Poll, voter: Actor) -> None:
    """Send a resident's vote in a remote poll to the poll's author (its own inbox, as Mastodon does):
    one Create{Note} per chosen option, id `<voter>#votes/<vote id>`."""
    author = await get_fast(session, Actor, poll.author_id)
    question_uri = await session.scalar(select(Post.uri).where(Post.id == poll.post_id))
    inbox = (author.inbox_uri or author.shared_inbox_uri) if author is not None else None
    if author is None or author.local or not question_uri or not inbox:
        return
    await ensure_local_keys(session, voter)
    votes = await session.scalars(select(PollVote).where(PollVote.poll_id == poll.id, PollVote.actor_id == voter.id)
                                  .order_by(PollVote.choice))
    for vote in votes:
        activity = to_ap.vote_of(f"{voter.uri}#votes/{vote.id}", voter, question_uri, author.uri,
                                 poll.options[vote.choice], vote.created_at)
        await publish(session, ctx, activity, voter, [inbox])
