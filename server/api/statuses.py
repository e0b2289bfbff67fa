"""/api/v1/statuses: post, read, delete, thread context, favourite and boost, and who did so.

Every read goes through the one visibility rule (`models.audience.visible_clause`): a status the
caller may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import GROUP, Actor
from voisinage.models.audience import Viewer, load_viewer, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.interaction import Favourite
from voisinage.models.meta import IdempotentResult
from voisinage.models.post import Post

from ..auth import AuthInfo, require_viewer
from ..errors import ApiError, json_response, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from ..services import posting
from .params import Params, get_page, link_header, path_id, read_params
from .to_api import render_accounts, render_status, render_statuses

IDEMPOTENCY_SECONDS = 3600
MAX_IDEMPOTENCY_KEY = 200
MAX_THREAD_DEPTH = 200
POLL_PARAMS = ("poll",)


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS].base_url


def _site(request: web.Request) -> posting.Site:
    settings = request.app[SETTINGS]
    return posting.Site(settings.base_url, settings.instance.domain)


async def _render(request: web.Request, session: AsyncSession, post: Post, actor_id: int) -> dict[str, Any]:
    # Counters were changed in SQL during this transaction: read them afresh.
    session.expire_all()
    await session.refresh(post)
    viewer = await load_viewer(session, actor_id)
    return await render_status(session, post, viewer, _base_url(request))


# --- POST /api/v1/statuses ------------------------------------------------------------------------

def _new_post(params: Params, auth: AuthInfo) -> posting.NewPost:
    """The request as a NewPost; refuses what we cannot honour rather than silently dropping it."""
    if params.get_list("media_ids"):
        raise unprocessable("Unknown media id")
    if any(params.raw(name) not in (None, "", [], {}) for name in POLL_PARAMS):
        raise unprocessable("Polls are not supported yet")
    if params.get_str("scheduled_at"):
        raise unprocessable("Scheduled posts are not supported yet")
    reply_to = params.get_str("in_reply_to_id")
    if reply_to:
        if not reply_to.isdigit() or len(reply_to) > 19:
            raise unprocessable("The post you are trying to reply to does not appear to exist")
        reply_id: int | None = int(reply_to)
    else:
        reply_id = None
    return posting.NewPost(
        text=params.get_str("status", "") or "",
        visibility=params.get_str("visibility") or None,  # checked by posting (empty: the default)
        spoiler_text=params.get_str("spoiler_text", "") or "",
        sensitive=params.get_bool("sensitive", None),
        language=(params.get_str("language") or "").lower() or None,
        in_reply_to_id=reply_id,
        application_id=auth.application_id,
    )


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(422, f"Validation failed: Idempotency-Key is too long (maximum is {MAX_IDEMPOTENCY_KEY})")
    return key


async def _replayed(session: AsyncSession, actor_id: int, key: str) -> Post | None:
    """The post an earlier request with this key created, if within the hour and still there.

    The account's keys older than an hour are forgotten on the way.
    """
    cutoff = utcnow() - dt.timedelta(seconds=IDEMPOTENCY_SECONDS)
    await session.execute(delete(IdempotentResult).where(IdempotentResult.actor_id == actor_id,
                                                         IdempotentResult.created_at < cutoff))
    post_id = await session.scalar(select(IdempotentResult.post_id).where(
        IdempotentResult.actor_id == actor_id, IdempotentResult.key == key))
    return await session.get(Post, post_id) if post_id is not None else None


async def create_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses, with `Idempotency-Key` replaying the first answer for an hour."""
    me = require_viewer(request)
    params = await read_params(request)
    new = _new_post(params, request["auth"])
    key = _idempotency_key(request)
    try:
        async with write_session(request.app[SESSIONMAKER]) as session:
            post = await _replayed(session, me, key) if key else None
            if post is None:
                author = await session.get(Actor, me)
                post = await posting.create_post(session, author, new, _site(request))
                if key:
                    session.add(IdempotentResult(actor_id=me, key=key, post_id=post.id))
                    await session.flush()
            data = await _render(request, session, post, me)
    except IntegrityError:
        # The same key raced in twice: the other request won; answer with its post.
        async with write_session(request.app[SESSIONMAKER]) as session:
            post = await _replayed(session, me, key) if key else None
            if post is None:
                raise
            data = await _render(request, session, post, me)
    return json_response(data)


# --- reading --------------------------------------------------------------------------------------

async def get_status(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id: the status (a boost shows its original inside), or 404 if not visible."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_post(session, viewer, post_id)
        return json_response(await render_status(session, post, viewer, _base_url(request)))


async def get_context(request: web.Request) -> web.Response:
    """Ancestors (oldest first) and descendants (depth first, by id) that the viewer may see."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        ancestors = await _ancestors(session, viewer, post)
        descendants = await _descendants(session, viewer, post)
        rendered = await render_statuses(session, ancestors + descendants, viewer, _base_url(request))
    return json_response({"ancestors": rendered[:len(ancestors)], "descendants": rendered[len(ancestors):]})


async def _ancestors(session: AsyncSession, viewer: Viewer, post: Post) -> list[Post]:
    chain: list[Post] = []
    parent_id = post.in_reply_to_id
    while parent_id is not None and len(chain) < MAX_THREAD_DEPTH:
        parent = await session.scalar(select(Post).where(Post.id == parent_id, visible_clause(viewer)))
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.in_reply_to_id
    chain.reverse()
    return chain


async def _descendants(session: AsyncSession, viewer: Viewer, post: Post) -> list[Post]:
    """Replies below `post` reachable through posts the viewer sees, depth first."""
    if post.thread_id is not None:
        rows = await session.scalars(select(Post).where(
            Post.thread_id == post.thread_id, Post.reblog.is_(False), Post.id != post.id,
            visible_clause(viewer)))
        candidates = list(rows)
    else:
        candidates = await _replies_by_level(session, viewer, post)
    children: dict[int, list[Post]] = {}
    for candidate in candidates:
        if candidate.in_reply_to_id is not None:
            children.setdefault(candidate.in_reply_to_id, []).append(candidate)
    out: list[Post] = []
    stack = sorted(children.get(post.id, []), key=lambda p: p.id, reverse=True)
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(sorted(children.get(current.id, []), key=lambda p: p.id, reverse=True))
    return out


async def _replies_by_level(session: AsyncSession, viewer: Viewer, post: Post) -> list[Post]:
    """For posts without a thread id (received from elsewhere): walk the replies level by level."""
    found: list[Post] = []
    level = [post.id]
    while level and len(found) < 1000:
        rows = list(await session.scalars(select(Post).where(
            Post.in_reply_to_id.in_(level), Post.reblog.is_(False), visible_clause(viewer))))
        found.extend(rows)
        level = [p.id for p in rows]
    return found


# --- deleting -------------------------------------------------------------------------------------

async def delete_status(request: web.Request) -> web.Response:
    """Delete one's own status; the answer carries `text` (the source) for delete-and-redraft."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await posting.get_own_post(session, me, post_id)
        data = await _render(request, session, post, me)
        data["text"] = post.source
        await posting.delete_post(session, post)
    return json_response(data)


# --- favourites and boosts ------------------------------------------------------------------------

async def favourite_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/favourite (idempotent); answers the status favourited."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await posting.create_favourite(session, me, post_id)
        data = await _render(request, session, post, me)
    return json_response(data)


async def unfavourite_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unfavourite (idempotent); answers the status."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await posting.delete_favourite(session, me, post_id)
        data = await _render(request, session, post, me)
    return json_response(data)


async def reblog_status(request: web.Request) -> web.Response:
    """Boost: answers the boost (a status whose `reblog` is the original), as Mastodon does."""
    me = require_viewer(request)
    post_id = path_id(request)
    # A `visibility` parameter is ignored: a boost always keeps its original's audience (never wider).
    async with write_session(request.app[SESSIONMAKER]) as session:
        booster = await session.get(Actor, me)
        boost = await posting.create_reblog(session, booster, post_id)
        data = await _render(request, session, boost, me)
    return json_response(data)


async def unreblog_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unreblog (idempotent); answers the original status."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        booster = await session.get(Actor, me)
        original = await posting.delete_reblog(session, booster, post_id)
        data = await _render(request, session, original, me)
    return json_response(data)


# --- who favourited / boosted ---------------------------------------------------------------------

async def get_favourited_by(request: web.Request) -> web.Response:
    """Accounts that favourited the status, newest first, paged with a Link header."""
    me = require_viewer(request)
    post_id = path_id(request)
    page = get_page(await read_params(request), default=40, maximum=80)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        query = select(Favourite.id, Favourite.actor_id).where(Favourite.post_id == post.id)
        rows, more = page.trim(list(await session.execute(page.apply(query, Favourite.id))))
        accounts = await render_accounts(session, [r.actor_id for r in rows], _base_url(request))
    return _paged(request, accounts, page, [r.id for r in rows], more)


async def get_reblogged_by(request: web.Request) -> web.Response:
    """Residents who boosted the post (the village's own announce is not a resident's boost)."""
    me = require_viewer(request)
    post_id = path_id(request)
    page = get_page(await read_params(request), default=40, maximum=80)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        query = (select(Post.id, Post.author_id).join(Actor, Actor.id == Post.author_id)
                 .where(Post.reblog_of_id == post.id, Actor.kind != GROUP))
        rows, more = page.trim(list(await session.execute(page.apply(query, Post.id))))
        accounts = await render_accounts(session, [r.author_id for r in rows], _base_url(request))
    return _paged(request, accounts, page, [r.id for r in rows], more)


def _paged(request: web.Request, data: list[Any], page: Any, ids: list[int], more: bool) -> web.Response:
    link = link_header(request, _base_url(request), page, ids, more)
    return json_response(data, headers={"Link": link} if link else None)

