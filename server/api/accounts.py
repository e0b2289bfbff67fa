"""/api/v1/accounts/*: the caller's own profile, other accounts, their statuses and follows.

Villages are local Group actors and show up here as accounts with `group: true`; following one is how
a resident widens their home timeline to a neighbouring village. Account creation (POST /accounts) lives
in `registration.py`. The follow rules themselves live in `services/relationships.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.federation.context import FEDERATION
from voisinage.models.actor import APPLICATION, Actor
from voisinage.models.audience import active_mutes, load_viewer, visible_clause
from voisinage.models.categories import canonical
from voisinage.models.db import read_session, write_session
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.mute_block import Block, Mute
from voisinage.models.post import DIRECT, Post, PostTag
from voisinage.models.resident import Resident

from ..auth import require_viewer
from ..errors import ApiError, json_response, not_found, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from ..services import federate
from ..services import media as media_service
from ..services.media import MediaError
from ..services.profile import ProfileError, apply_profile, validate_profile
from ..services.relationships import (
    FollowNotAllowed,
    accept_all_requests,
    count_follow_requests,
    create_block,
    create_follow,
    create_mute,
    remove_block,
    remove_follow,
    remove_mute,
)
from . import to_api
from .media import read_upload
from .params import Params, fold_pairs, get_page, link_header, parse_id, path_id, read_params

MAX_RELATIONSHIPS = 100
SEARCH_LIMIT = 40
SEARCH_MAX = 80


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS].base_url


async def get_visible_actor(session: AsyncSession, actor_id: int) -> Actor:
    """An account anyone may look at: known and not suspended (404 otherwise)."""
    actor = await session.get(Actor, actor_id)
    if actor is None or actor.suspended_at is not None:
        raise not_found()
    return actor


# -- the caller's own account ----------------------------------------------------------------------

async def _credential_account(session: AsyncSession, actor_id: int, base_url: str) -> dict[str, Any]:
    actor = await session.get(Actor, actor_id)
    resident = await session.get(Resident, actor_id)
    if actor is None or resident is None:
        raise ApiError(403, "This method requires a resident account")
    requests = await count_follow_requests(session, actor_id)
    return to_api.credential_account_to_api(actor, resident, base_url, requests)


async def verify_credentials(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/verify_credentials: the caller's CredentialAccount (with `source`)."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        return json_response(await _credential_account(session, me, _base_url(request)))


PROFILE_IMAGES = {"avatar": (400, 400), "header": (1500, 500)}  # Mastodon's sizes


async def _profile_params(request: web.Request) -> tuple[Params, dict[str, bytes]]:
    """The form (JSON, urlencoded, or multipart with `avatar`/`header` files streamed under a cap)."""
    if request.content_type != "multipart/form-data":
        return await read_params(request), {}
    upload = await read_upload(request, file_names=tuple(PROFILE_IMAGES))
    return Params(fold_pairs(upload.fields.items())), upload.files


async def _store_profile_images(request: web.Request, files: dict[str, bytes]) -> dict[str, str]:
    """Process and store uploaded avatar/header images; returns their URLs. 422 for a refused image."""
    urls: dict[str, str] = {}
    root = Path(request.app[SETTINGS].media.path)
    base_url = request.app[SETTINGS].base_url
    for name, data in files.items():
        try:
            processed = await asyncio.to_thread(media_service.process_image, data, crop=PROFILE_IMAGES[name])
        except MediaError as exc:
            raise unprocessable(f"{name}: {exc}") from None
        key = media_service.new_file_key()
        await asyncio.to_thread(media_service.store_media, root, key, processed)
        urls[name] = f"{base_url}/media/{key[:2]}/{key}/original.{processed.extension}"
    return urls


async def update_credentials(request: web.Request) -> web.StreamResponse:
    """PATCH /api/v1/accounts/update_credentials: every value is checked first; 422 changes nothing."""
    me = require_viewer(request)
    params, files = await _profile_params(request)
    settings = request.app[SETTINGS]
    async with write_session(request.app[SESSIONMAKER]) as session:
        actor = await session.get(Actor, me)
        resident = await session.get(Resident, me)
        if actor is None or resident is None:
            raise ApiError(403, "This method requires a resident account")
        try:
            changes = validate_profile(actor, params.data, tuple(settings.instance.languages))
        except ProfileError as exc:
            raise unprocessable(str(exc)) from None
        images = await _store_profile_images(request, files)  # only once every other value is valid
        apply_profile(actor, resident, changes)
        if "avatar" in images:
            actor.avatar_url = images["avatar"]
        if "header" in images:
            actor.header_url = images["header"]
        changed = session.is_modified(actor)  # its document, not only the resident's own settings
        await session.flush()
        if changes.locked is False:
            await accept_all_requests(session, actor)  # unlocking approves who was waiting (Mastodon)
            await session.refresh(actor)  # its counters changed in SQL
        if changed:
            await federate.profile_updated(session, actor)
        data = await _credential_account(session, me, settings.base_url)
    return json_response(data)


# -- other accounts --------------------------------------------------------------------------------

async def get_account(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/:id (404 for unknown or suspended accounts)."""
    require_viewer(request)
    actor_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        actor = await get_visible_actor(session, actor_id)
        return json_response(to_api.account_to_api(actor, _base_url(request)))


def _tagged_clause(tag: str) -> Any:
    """Rows whose post (or boosted original) carries the tag or a synonym of it (`#zoekertje` = `#annonce`)."""
    original = func.coalesce(Post.reblog_of_id, Post.id)
    return exists(select(PostTag.post_id).where(
        PostTag.post_id == original, PostTag.canonical == canonical(tag.strip())))


def _account_statuses_query(params: Params, author_id: int, viewer: Any) -> Any:
    query = to_api.status_keys().where(Post.author_id == author_id, Post.visibility != DIRECT,
                                        visible_clause(viewer))
    if params.get_bool("exclude_replies", False):
        # as Mastodon: a thread the author continues (a reply to themselves) stays
        query = query.where(or_(Post.in_reply_to_id.is_(None), Post.in_reply_to_account_id == author_id))
    if params.get_bool("exclude_reblogs", False):
        query = query.where(Post.reblog_of_id.is_(None))
    tagged = params.get_str("tagged", max_len=100)
    if tagged and tagged.strip().lstrip("#"):
        query = query.where(_tagged_clause(tagged))
    return query


async def get_account_statuses(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/:id/statuses: newest first, as the caller may see them; for a village,
    its announces (the posts of its residents, as boosts)."""
    me = require_viewer(request)
    actor_id = path_id(request)
    params = await read_params(request)
    page = get_page(params)
    base_url = _base_url(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        await get_visible_actor(session, actor_id)
        viewer = await load_viewer(session, me)
        query = _account_statuses_query(params, actor_id, viewer)
        from voisinage.models.media import (
            MediaAttachment,  # pins and media: the statuses engineer's part
        )
        from voisinage.models.pin import Pin
        if params.get_bool("pinned", False):
            query = query.where(Post.id.in_(select(Pin.post_id).where(Pin.actor_id == actor_id)))
        if params.get_bool("only_media", False):
            query = query.where(exists(select(MediaAttachment.id).where(MediaAttachment.post_id == Post.id)))
        posts, more = page.trim(list(await session.execute(page.apply(query, Post.id))))
        data = await to_api.render_statuses(session, posts, viewer, base_url)
    link = link_header(request, base_url, page, [p.id for p in posts], more)
    return json_response(data, headers={"Link": link} if link else None)


async def _follow_list(request: web.Request, *, followers: bool) -> web.StreamResponse:
    """Accepted follows of (or by) an account, paginated by the Follow's id."""
    require_viewer(request)
    actor_id = path_id(request)
    params = await read_params(request)
    page = get_page(params, default=40, maximum=80)
    base_url = _base_url(request)
    other, mine = ((Follow.follower_id, Follow.target_id) if followers else (Follow.target_id, Follow.follower_id))
    async with read_session(request.app[SESSIONMAKER]) as session:
        await get_visible_actor(session, actor_id)
        query = (select(Follow.id, other).join(Actor, Actor.id == other)
                 .where(mine == actor_id, Follow.state == ACCEPTED, Actor.suspended_at.is_(None)))
        rows, more = page.trim(list((await session.execute(page.apply(query, Follow.id))).all()))
        data = await to_api.render_accounts(session, [row[1] for row in rows], base_url)
    link = link_header(request, base_url, page, [row[0] for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_followers(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/:id/followers."""
    return await _follow_list(request, followers=True)


async def get_following(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/:id/following."""
    return await _follow_list(request, followers=False)


# -- follows ---------------------------------------------------------------------------------------

async def follow_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/follow (`reblogs`, `notify`); following again changes those options."""
    me = require_viewer(request)
    target_id = path_id(request)
    params = await read_params(request)
    reblogs = params.get_bool("reblogs", None)
    notify_posts = params.get_bool("notify", None)
    try:
        relationship = await _follow_once(request, me, target_id, reblogs, notify_posts)
    except IntegrityError:
        # the same follow raced in twice (two taps): the other request made it; now it only updates
        relationship = await _follow_once(request, me, target_id, reblogs, notify_posts)
    return json_response(relationship)


async def _follow_once(request: web.Request, me: int, target_id: int, reblogs: bool | None,
                       notify_posts: bool | None) -> dict[str, Any]:
    async with write_session(request.app[SESSIONMAKER]) as session:
        target = await get_visible_actor(session, target_id)
        follower = await session.get(Actor, me)
        if follower is None:
            raise ApiError(401, "The access token is invalid")
        try:
            await create_follow(session, follower, target, reblogs=reblogs, notify_posts=notify_posts)
        except FollowNotAllowed as exc:
            raise ApiError(403, str(exc)) from None
        return (await to_api.relationships_to_api(session, me, [target_id]))[0]


async def unfollow_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/unfollow (also withdraws a pending request)."""
    me = require_viewer(request)
    target_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        await get_visible_actor(session, target_id)
        await remove_follow(session, me, target_id)
        relationship = (await to_api.relationships_to_api(session, me, [target_id]))[0]
    return json_response(relationship)


# -- relationships, lookup, search ------------------------------------------------------------------

async def _requested_ids(request: web.Request, params: Params) -> list[str]:
    """`id[]=1&id[]=2`, `id=1`, `id=1&id=2`, or a JSON body `{"id": [...]}` (some clients send one)."""
    plain = request.query.getall("id", [])
    if len(plain) > 1:
        values: Any = plain
    else:
        values = params.get_list("id", max_items=MAX_RELATIONSHIPS)
    if not values and request.method == "GET" and request.content_type == "application/json":
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise ApiError(400, "The request body is not valid JSON") from None
        if isinstance(body, dict):
            values = Params(body).get_list("id", max_items=MAX_RELATIONSHIPS)
    if len(values) > MAX_RELATIONSHIPS:
        raise unprocessable(f"too many values for id (maximum is {MAX_RELATIONSHIPS})")
    return [str(v) for v in values]


def _parse_ids(values: list[str]) -> list[int]:
    """Ids in the order asked, without repeats; values that cannot be ids are skipped."""
    out: list[int] = []
    for value in values:
        try:
            number = parse_id(value.strip())
        except ApiError:
            continue
        if number not in out:
            out.append(number)
    return out


async def get_relationships(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/relationships?id[]=...: in the order asked, unknown ids skipped."""
    me = require_viewer(request)
    params = await read_params(request)
    ids = _parse_ids(await _requested_ids(request, params))
    async with request.app[SESSIONMAKER]() as session:
        known = set(await session.scalars(select(Actor.id).where(Actor.id.in_(ids)))) if ids else set()
        data = await to_api.relationships_to_api(session, me, [i for i in ids if i in known])
    return json_response(data)


def _split_acct(acct: str, domain: str) -> str | None:
    """The local username an `acct` names (`name`, `@name`, `name@our-domain`), else None."""
    acct = acct.strip().lstrip("@")
    if "@" in acct:
        acct, host = acct.split("@", 1)
        if host.lower() != domain.lower():
            return None
    return acct or None


async def lookup_account(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/lookup?acct=name (or name@our-domain): residents and villages."""
    require_viewer(request)
    params = await read_params(request)
    acct = params.get_str("acct", required=True, max_len=300) or ""
    settings = request.app[SETTINGS]
    username = _split_acct(acct, settings.instance.domain)
    if username is None:  # another instance's account: known already, or looked up on a partner
        async with request.app[SESSIONMAKER]() as session:
            remote = await federate.resolve_account(request.app.get(FEDERATION), session, acct)
            if remote is None or remote.suspended_at is not None:
                raise not_found()
            await session.commit()
            return json_response(to_api.account_to_api(remote, settings.base_url))
    async with request.app[SESSIONMAKER]() as session:
        actor = await session.scalar(select(Actor).where(
            func.lower(Actor.username) == username.lower(), Actor.domain == "",
            Actor.kind != APPLICATION, Actor.suspended_at.is_(None)))
        if actor is None:
            raise not_found()
        return json_response(to_api.account_to_api(actor, settings.base_url))


# Accent-insensitive matching on both engines: PostgreSQL folds with its built-in translate() (no
# extension needed); SQLite gets the same Python fold registered on the connection. The table covers the
# letters of the commune's languages (fr, nl, de, en); upper-case ones are listed because lower() of
# both engines only folds ASCII in the C locale.
_ACCENTED = "àáâãäåçèéêëìíîïñòóôõöøùúûüýÿœæßÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŸŒÆ"
_PLAIN = "aaaaaaceeeeiiiinoooooouuuuyyoasaaaaaaceeeeiiiinoooooouuuuyyoa"
_FOLD_TABLE = str.maketrans(_ACCENTED, _PLAIN)
SQLITE_FOLD = "voisinage_fold"


def fold_text(text: str) -> str:
    """Lower-case, accents off: the key both sides of an account search are compared on."""
    return text.lower().translate(_FOLD_TABLE)


def _sqlite_fold(value: str | None) -> str | None:
    return None if value is None else fold_text(value)


async def _folder(session: AsyncSession) -> Callable[[Any], Any]:
    """A function turning a column into its folded form, in SQL the session's engine runs."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        raw = (await connection.get_raw_connection()).driver_connection  # the aiosqlite connection
        assert raw is not None
        await raw.create_function(SQLITE_FOLD, 1, _sqlite_fold, deterministic=True)
        return lambda column: getattr(func, SQLITE_FOLD)(column)
    return lambda column: func.translate(func.lower(column), _ACCENTED, _PLAIN)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_query(me: int, q: str, domain: str, following: bool, fold: Callable[[Any], Any]) -> Any | None:
    """Accounts matching `q`, or None when `q` names an account of another instance."""
    query = select(Actor).where(Actor.suspended_at.is_(None), Actor.kind != APPLICATION)
    if following:
        query = query.where(Actor.id.in_(
            select(Follow.target_id).where(Follow.follower_id == me, Follow.state == ACCEPTED)))
    term = q.strip().lstrip("@")
    if "@" in term:  # a full handle: that account only
        username = _split_acct(term, domain)
        if username is None:
            return None  # another instance's account: resolving remote accounts comes with federation
        return query.where(func.lower(Actor.username) == username.lower(), Actor.domain == "")
    pattern = _like_pattern(fold_text(term))
    same_username = func.lower(Actor.username) == term.lower()
    matches = or_(fold(Actor.display_name).like(pattern, escape="\\"),
                  fold(Actor.username).like(pattern, escape="\\"))
    # accounts that chose not to be discoverable are found by their exact username only
    return (query.where(or_(and_(matches, Actor.discoverable.is_(True)), same_username))
            .order_by(case((same_username, 0), else_=1), func.lower(Actor.display_name), Actor.id))


async def search_accounts(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/search?q=&limit=&offset=&resolve=&following=: residents and villages."""
    me = require_viewer(request)
    params = await read_params(request)
    q = params.get_str("q", required=True, max_len=200) or ""
    limit = params.get_int("limit", SEARCH_LIMIT, minimum=1, maximum=SEARCH_MAX, clamp=True) or SEARCH_LIMIT
    offset = params.get_int("offset", 0, minimum=0) or 0
    params.get_bool("resolve", False)  # accepted; remote accounts are resolved once federation exists
    following = bool(params.get_bool("following", False))
    settings = request.app[SETTINGS]
    if not q.strip().lstrip("@"):
        return json_response([])
    async with request.app[SESSIONMAKER]() as session:
        query = _search_query(me, q, settings.instance.domain, following, await _folder(session))
        if query is None:
            return json_response([])
        actors = list(await session.scalars(query.limit(limit).offset(offset)))
    return json_response([to_api.account_to_api(a, settings.base_url) for a in actors])


# -- blocks and mutes ------------------------------------------------------------------------------

MAX_MUTE_SECONDS = 10 * 365 * 24 * 3600


async def _relationship_after(request: web.Request, change: Callable[..., Any]) -> web.StreamResponse:
    """Run `change(session, me_actor, target)` in one write transaction; answer the Relationship."""
    me = require_viewer(request)
    target_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        target = await get_visible_actor(session, target_id)
        actor = await session.get(Actor, me)
        if actor is None:
            raise ApiError(401, "The access token is invalid")
        try:
            await change(session, actor, target)
        except FollowNotAllowed as exc:
            raise ApiError(403, str(exc)) from None
        relationship = (await to_api.relationships_to_api(session, me, [target_id]))[0]
    return json_response(relationship)


async def block_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/block: follows both ways end; the two see nothing of each other."""
    return await _relationship_after(request, create_block)


async def unblock_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/unblock (idempotent)."""
    return await _relationship_after(request, lambda session, me, target: remove_block(session, me.id, target.id))


async def mute_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/mute (`notifications` default true, `duration` seconds, 0 = forever)."""
    params = await read_params(request)
    notifications = params.get_bool("notifications", True)
    duration = params.get_int("duration", 0, minimum=0, maximum=MAX_MUTE_SECONDS) or 0

    async def change(session: AsyncSession, me: Actor, target: Actor) -> None:
        await create_mute(session, me, target, notifications=bool(notifications), duration=duration)
    return await _relationship_after(request, change)


async def unmute_account(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/accounts/:id/unmute (idempotent)."""
    return await _relationship_after(request, lambda session, me, target: remove_mute(session, me.id, target.id))


async def _account_list(request: web.Request, query: Any, key: Any,
                        extra: Callable[[Any], dict[str, Any]] | None = None) -> web.StreamResponse:
    """Accounts from rows (row id, actor id, ...) paged by `key` with a Link header."""
    params = await read_params(request)
    page = get_page(params, default=40, maximum=80)
    base_url = _base_url(request)
    async with request.app[SESSIONMAKER]() as session:
        rows, more = page.trim(list((await session.execute(page.apply(query, key))).all()))
        data = await to_api.render_accounts(session, [row[1] for row in rows], base_url)
    if extra is not None:
        by_id = {str(row[1]): row for row in rows}
        for account in data:
            account.update(extra(by_id[account["id"]]))
    link = link_header(request, base_url, page, [row[0] for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_blocks(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/blocks: the accounts I block, newest block first."""
    me = require_viewer(request)
    query = select(Block.id, Block.target_id).where(Block.actor_id == me)
    return await _account_list(request, query, Block.id)


async def get_mutes(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/mutes: the accounts I mute now, with `mute_expires_at`, newest mute first."""
    me = require_viewer(request)
    query = select(Mute.id, Mute.target_id, Mute.expires_at).where(
        Mute.actor_id == me, Mute.target_id.in_(active_mutes(me)))
    return await _account_list(request, query, Mute.id,
                               lambda row: {"mute_expires_at": to_api.iso(row[2])})
