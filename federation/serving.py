"""Serving our actors and objects to partners, with authorized fetch (SECURITY.md "Serving").

Actor documents: an unsigned request gets the minimal document (what a peer needs to verify our
signatures and deliver to us); a request signed by a partner's actor gets the full one, and one signed
by a non-partner's actor gets 404 like everything else, so a stranger cannot even resolve our
accounts. Everything else (outboxes, collections, posts, activities) requires a valid signature from a
partner's actor:

| request | answer |
|---|---|
| unsigned, or a signature that does not verify | 401 |
| signed by an actor of a non-partner host | 404, and no key lookup at all |
| signed by a partner that may not see the object (`models.remote_audience`) | 404 |
| signed by a partner that may | 200, `Cache-Control: private` |

There are no public HTML profiles: a request that does not accept ActivityPub JSON gets 406.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import GROUP, PERSON, Actor
from voisinage.models.db import get_fast, read_session, retried_when_busy, write_session
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.post import Post
from voisinage.models.remote_audience import remote_may_see
from voisinage.models.tombstone import Tombstone
from voisinage.models.uris import instance_actor_uri
from voisinage.models.village import Village

from .actors import ApParseError, NeedsFetch, NotPartner, UnknownActor, verified_key_owner
from .context import FEDERATION, FederationContext
from .local_keys import KeysMissing, ensure_local_keys, get_instance_actor, has_keys
from .signatures import SignatureError, key_id_of
from .to_ap import actor_to_ap, announce_of, create_of
from .transport import FetchError
from .vocab import AP_CONTENT_TYPES, AP_RESPONSE_TYPE

OUTBOX_PAGE = 20
MODERATOR_ROLES = ("moderator", "admin")


# -- signatures -------------------------------------------------------------------------------


def is_signed(request: web.Request) -> bool:
    """Whether the request carries a signature header of either scheme."""
    return "Signature" in request.headers or "Signature-Input" in request.headers


async def verify_signed_request(ctx: FederationContext, session: AsyncSession, request: web.Request, *,
                                body: bytes = b"", fetch: bool = True) -> Actor | None:
    """The actor whose key signed `request`; None when the request is not signed at all.

    Order (SECURITY.md): the keyId's host must be a partner (else NotPartner, before any key lookup),
    then the key is looked up (cache, database, or a signed fetch) and the signature verified against
    `request.raw_path`, our domain as Host, and `body` (`actors.verified_key_owner`: on failure the key
    is refetched once, at most once a minute per key). Raises NotPartner or SignatureError. `session`
    may be written to (new remote actors). With `fetch=False`, NeedsFetch where a fetch would be needed
    (the key is unknown, or did not verify), and nothing is written.
    """
    if not is_signed(request):
        return None
    key_id, _ = key_id_of(request.headers)
    try:  # `public_key_for` checks the partner first: NotPartner before any lookup
        return await verified_key_owner(ctx, session, key_id, request, body, fetch=fetch)
    except (FetchError, ApParseError, UnknownActor) as exc:
        raise SignatureError(f"cannot use key {key_id[:200]}: {exc}") from None


async def get_signer(request: web.Request, *, refuse_strangers: bool = False) -> Actor | None:
    """The verified partner actor that signed `request`, or None (unsigned, bad, or not a partner);
    with `refuse_strangers`, a signature by a non-partner's actor is a 404 (before any key lookup)."""
    ctx = request.app[FEDERATION]
    if not is_signed(request):
        return None
    try:
        signer = await _verified_signer(ctx, request)
    except NotPartner:
        if refuse_strangers:
            raise web.HTTPNotFound() from None
        return None
    except SignatureError:
        return None
    return signer if signer is not None and not signer.local else None


async def _verified_signer(ctx: FederationContext, request: web.Request) -> Actor | None:
    """`verify_signed_request` as the inbox does it: a known key (nearly every request) in a read
    session, without the write lock (SQLite) or a transaction; otherwise in a deferred transaction,
    which takes the write lock only to store the fetched key's owner, never during the fetch (the peer
    verifies it by fetching our instance actor, which would wait behind that lock), tried again when
    another write came in between (SQLite)."""
    async with read_session(ctx.sessionmaker) as session:
        with contextlib.suppress(NeedsFetch):
            return await verify_signed_request(ctx, session, request, fetch=False)

    async def fetching() -> Actor | None:
        async with ctx.sessionmaker() as session:
            signer = await verify_signed_request(ctx, session, request)
            await session.commit()
            return signer

    return await retried_when_busy(fetching)


async def require_partner_signer(request: web.Request) -> Actor:
    """The partner actor that signed `request`; 401 when unsigned or invalid, 404 for non-partners."""
    ctx = request.app[FEDERATION]
    if not is_signed(request):
        raise web.HTTPUnauthorized(text="signature required")
    try:
        signer = await _verified_signer(ctx, request)
    except NotPartner:
        raise web.HTTPNotFound() from None
    except SignatureError:
        raise web.HTTPUnauthorized(text="signature not valid") from None
    if signer is None:
        raise web.HTTPUnauthorized(text="signature required")
    if signer.local:
        raise web.HTTPNotFound()
    return signer


# -- responses --------------------------------------------------------------------------------


def wants_activity_json(request: web.Request) -> bool:
    """Whether the Accept header asks for ActivityPub JSON (activity+json or ld+json)."""
    accept = request.headers.get("Accept", "").lower()
    return any(kind in accept for kind in AP_CONTENT_TYPES)


def require_activity_json(request: web.Request) -> None:
    """406 for anything but an ActivityPub request: there are no public HTML pages of actors."""
    if not wants_activity_json(request):
        raise web.HTTPNotAcceptable(text="this address serves ActivityPub JSON only")


def ap_response(document: dict[str, Any], *, private: bool) -> web.Response:
    """JSON with Content-Type application/activity+json; authorized answers are never shared by caches."""
    cache = "private, max-age=60" if private else "public, max-age=180"
    response = web.json_response(document, content_type=AP_RESPONSE_TYPE)
    response.headers["Cache-Control"] = cache
    response.headers["Vary"] = "Accept, Signature, Signature-Input"
    return response


# -- loading our rows -------------------------------------------------------------------------


async def get_local_actor(session: AsyncSession, name: str, kind: str) -> Actor:
    """A local, not suspended Person (by username) or Group (by slug); 404 otherwise."""
    if "\x00" in name:  # no such name, and PostgreSQL refuses the character in a query
        raise web.HTTPNotFound()
    actor = await session.scalar(select(Actor).where(
        func.lower(Actor.username) == name.lower(), Actor.domain == "", Actor.kind == kind,
        Actor.suspended_at.is_(None)))
    if actor is None:
        raise web.HTTPNotFound()
    return actor


async def _with_keys(ctx: FederationContext, actor: Actor) -> Actor:
    """The actor with its keys, creating them on first use (registration does not)."""
    if has_keys(actor):
        return actor
    async with write_session(ctx.sessionmaker) as session:
        fresh = await get_fast(session, Actor, actor.id)
        assert fresh is not None
        await ensure_local_keys(session, fresh)
    return fresh


async def get_moderators(session: AsyncSession, village_id: int | None) -> list[str]:
    """URIs of a village's moderators and admins (FEP-1b12 attributedTo)."""
    if village_id is None:
        return []
    rows = await session.scalars(select(Actor.uri).where(
        Actor.village_id == village_id, Actor.kind == PERSON, Actor.domain == "",
        Actor.role.in_(MODERATOR_ROLES), Actor.suspended_at.is_(None)).order_by(Actor.id))
    return list(rows)


_T = TypeVar("_T")


async def _rendered(ctx: FederationContext, render: Callable[[AsyncSession, bool], Awaitable[_T]]) -> _T:
    """`render(session, make_keys)`, our posts as a peer fetches them: in a read session (the fetch
    must not wait behind our write lock), again in a write session when an author has no keys yet
    (its first use makes them)."""
    with contextlib.suppress(KeysMissing):
        async with read_session(ctx.sessionmaker) as session:
            return await render(session, False)
    async with write_session(ctx.sessionmaker) as session:
        return await render(session, True)


async def note_for_post(session: AsyncSession, ctx: FederationContext, post: Post, *,
                        make_keys: bool = True) -> dict[str, Any]:
    """The signed Note (a Question for a poll) of one of our original posts, with its media, as it was
    delivered (`outbox.render_note`); gives the author keys if it has none (flushes), or without
    `make_keys` raises KeysMissing."""
    from .outbox import render_note  # outbox imports this module (get_moderators)

    note, _ = await render_note(session, ctx, post, make_keys=make_keys)
    return note


async def activity_for_post(session: AsyncSession, ctx: FederationContext, post: Post, *,
                            make_keys: bool = True) -> dict[str, Any] | None:
    """Create{Note} for an original post, Announce for a boost of a local post; else None. Gives the
    author keys if it has none (a write session), or without `make_keys` raises KeysMissing."""
    author = await get_fast(session, Actor, post.author_id)
    if author is None:
        return None
    if not post.reblog:
        return create_of(await note_for_post(session, ctx, post, make_keys=make_keys), author)
    original = await session.get(Post, post.reblog_of_id) if post.reblog_of_id else None
    if original is None or not original.local or original.reblog:
        return None  # boosts of partner posts are announced by their own delivery, not served here
    return announce_of(author, await note_for_post(session, ctx, original, make_keys=make_keys), post.uri)


# -- handlers: actors -------------------------------------------------------------------------


async def _actor_response(request: web.Request, actor: Actor, village_name: str | None = None) -> web.Response:
    ctx = request.app[FEDERATION]
    actor = await _with_keys(ctx, actor)
    signer = await get_signer(request, refuse_strangers=True)
    moderators: list[str] = []
    if signer is not None and actor.kind == GROUP:
        async with read_session(ctx.sessionmaker) as session:
            moderators = await get_moderators(session, actor.village_id)
    document = actor_to_ap(actor, full=signer is not None, village_name=village_name, moderators=moderators)
    return ap_response(document, private=signer is not None)


async def get_person(request: web.Request) -> web.Response:
    """GET /users/{name}"""
    require_activity_json(request)
    async with read_session(request.app[FEDERATION].sessionmaker) as session:
        actor = await get_local_actor(session, request.match_info["name"], PERSON)
    return await _actor_response(request, actor)


async def get_village_actor(request: web.Request) -> web.Response:
    """GET /villages/{slug}"""
    require_activity_json(request)
    async with read_session(request.app[FEDERATION].sessionmaker) as session:
        actor = await get_local_actor(session, request.match_info["slug"], GROUP)
        name = await session.scalar(select(Village.name).where(Village.id == actor.village_id))
    return await _actor_response(request, actor, name)


async def get_instance_actor_document(request: web.Request) -> web.Response:
    """GET /actor: our Application actor, whose key signs the instance's fetches."""
    require_activity_json(request)
    ctx = request.app[FEDERATION]
    async with read_session(ctx.sessionmaker) as session:  # a peer's fetch must never wait on our write lock
        actor = await session.scalar(select(Actor).where(Actor.uri == instance_actor_uri(ctx.base_url)))
    if actor is None or actor.public_key_pem is None:  # first use (the server creates it at start-up)
        async with write_session(ctx.sessionmaker) as session:
            actor = await get_instance_actor(session, ctx)
    # Never verify signatures here: a partner verifying our instance actor's signed fetch fetches
    # this document signed by its own instance actor, whose key we would fetch the same way (a loop).
    # It holds nothing private.
    document = actor_to_ap(actor, full=True, village_name=None, moderators=[])
    return ap_response(document, private=False)


# -- handlers: collections --------------------------------------------------------------------


async def _owner(request: web.Request, session: AsyncSession) -> Actor:
    if "slug" in request.match_info:
        return await get_local_actor(session, request.match_info["slug"], GROUP)
    return await get_local_actor(session, request.match_info["name"], PERSON)


async def _uris_on_host(session: AsyncSession, actor_id: int, host: str, followers: bool) -> list[str]:
    """Accepted followers (or followees) of `actor_id` on `host`: partners see only their own side."""
    mine, theirs = (Follow.target_id, Follow.follower_id) if followers else (Follow.follower_id, Follow.target_id)
    rows = await session.scalars(select(Actor.uri).join(Follow, theirs == Actor.id).where(
        mine == actor_id, Follow.state == ACCEPTED, Actor.domain == host).order_by(Actor.id).limit(1000))
    return list(rows)


async def get_followers(request: web.Request) -> web.Response:
    """GET .../followers and .../following: the count, and the members on the signer's host."""
    require_activity_json(request)
    signer = await require_partner_signer(request)
    followers = request.path.rstrip("/").endswith("/followers")
    async with read_session(request.app[FEDERATION].sessionmaker) as session:
        owner = await _owner(request, session)
        items = await _uris_on_host(session, owner.id, signer.domain, followers)
    total = owner.followers_count if followers else owner.following_count
    document = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": owner.followers_uri if followers else f"{owner.uri}/following",
                "type": "OrderedCollection", "totalItems": total, "orderedItems": items}
    return ap_response(document, private=True)


async def get_outbox(request: web.Request) -> web.Response:
    """GET .../outbox: the newest posts of the actor that the signer's instance may see."""
    require_activity_json(request)
    signer = await require_partner_signer(request)
    ctx = request.app[FEDERATION]

    async def render(session: AsyncSession, make_keys: bool) -> tuple[Actor, list[dict[str, Any]]]:
        owner = await _owner(request, session)
        posts = list(await session.scalars(select(Post).where(Post.author_id == owner.id, Post.local.is_(True))
                                      .order_by(Post.id.desc()).limit(OUTBOX_PAGE * 3)))
        items: list[dict[str, Any]] = []
        for post in posts:
            if len(items) < OUTBOX_PAGE and await remote_may_see(session, post, signer):
                activity = await activity_for_post(session, ctx, post, make_keys=make_keys)
                if activity is not None:
                    items.append(activity)
        return owner, items

    owner, items = await _rendered(ctx, render)
    document = {"@context": "https://www.w3.org/ns/activitystreams", "id": owner.outbox_uri,
                "type": "OrderedCollection", "totalItems": len(items), "orderedItems": items}
    return ap_response(document, private=True)


# -- handlers: posts and activities -----------------------------------------------------------


async def _visible_post(request: web.Request, signer: Actor, *, activity: bool) -> tuple[Actor, Post]:
    """The post of the URL, if the signer's instance may see it; 404 or 410 otherwise."""
    ctx = request.app[FEDERATION]
    text = request.match_info["id"]
    # ids are ASCII decimals of 63-bit numbers: the route's \d+ also matches other scripts' digits
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 1 << 63):
        raise web.HTTPNotFound()
    post_id = int(text)
    async with read_session(ctx.sessionmaker) as session:
        owner = await _owner(request, session)
        post = await session.get(Post, post_id)
        boost = activity and post is not None and post.reblog
        expected = f"{owner.uri}/statuses/{post_id}" + ("/activity" if boost else "")
        if post is None or not post.local or post.author_id != owner.id or post.uri != expected:
            tombstone = await session.get(Tombstone, expected) if post is None else None
            if tombstone is not None and tombstone.public:
                raise web.HTTPGone()  # only a public post's deletion is told; a private one was never there
            raise web.HTTPNotFound()
        if post.reblog and not activity:
            raise web.HTTPNotFound()  # a boost is an Announce activity, not an object
        if not await remote_may_see(session, post, signer):
            raise web.HTTPNotFound()
    return owner, post


async def get_status(request: web.Request) -> web.Response:
    """GET /users/{name}/statuses/{id}: the Note."""
    require_activity_json(request)
    signer = await require_partner_signer(request)
    _, post = await _visible_post(request, signer, activity=False)
    ctx = request.app[FEDERATION]
    note = await _rendered(ctx, lambda session, make_keys: note_for_post(session, ctx, post, make_keys=make_keys))
    return ap_response(note, private=True)


async def get_status_activity(request: web.Request) -> web.Response:
    """GET .../statuses/{id}/activity: Create{Note}, or the Announce of a boost."""
    require_activity_json(request)
    signer = await require_partner_signer(request)
    _, post = await _visible_post(request, signer, activity=True)
    ctx = request.app[FEDERATION]
    activity = await _rendered(
        ctx, lambda session, make_keys: activity_for_post(session, ctx, post, make_keys=make_keys))
    if activity is None:
        raise web.HTTPNotFound()
    return ap_response(activity, private=True)
