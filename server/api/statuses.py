"""/api/v1/statuses: post, read, delete, thread context, favourite and boost, and who did so.

Every read goes through the one visibility rule (`models.audience.visible_clause`): a status the
caller may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import GROUP, Actor
from voisinage.models.audience import Viewer, blocked_with, load_viewer, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.bookmark import Bookmark
from voisinage.models.db import get_fast, read_session, write_session
from voisinage.models.ids import new_id
from voisinage.models.interaction import Favourite
from voisinage.models.media import MediaAttachment
from voisinage.models.meta import IdempotentResult
from voisinage.models.pin import MAX_PINS, Pin
from voisinage.models.post import DIRECT, Post
from voisinage.models.status_edit import StatusEdit

from ..auth import AuthInfo, require_viewer
from ..errors import ApiError, json_response, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from ..services import posting
from ..services.media import media_to_api
from .params import Params, get_page, link_header, path_id, read_params
from .to_api import StatusBatch, iso, load_posts, render_accounts, render_status, render_statuses

IDEMPOTENCY_SECONDS = 3600
MAX_IDEMPOTENCY_KEY = 200
MAX_THREAD_DEPTH = 200


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS].base_url


def _site(request: web.Request) -> posting.Site:
    settings = request.app[SETTINGS]
    return posting.Site(settings.base_url, settings.instance.domain)


async def _render_committed(request: web.Request, post_id: int, actor_id: int) -> web.Response:
    """Answer a status just written, rendered after the commit in a read session: a write transaction
    (SQLite's one writer) is not held while the answer is made."""
    async with read_session(request.app[SESSIONMAKER]) as session:
        post = (await load_posts(session, [post_id])).get(post_id)
        if post is None:  # deleted by someone else in between
            raise ApiError(404, "Record not found")
        viewer = await load_viewer(session, actor_id)
        return json_response(await render_status(session, post, viewer, _base_url(request)))


async def _render(request: web.Request, session: AsyncSession, post: Post, actor_id: int) -> dict[str, Any]:
    # Counters were changed in SQL during this transaction: read them afresh.
    session.expire_all()
    await session.refresh(post)
    viewer = await load_viewer(session, actor_id)
    return await render_status(session, post, viewer, _base_url(request))


# --- POST /api/v1/statuses ------------------------------------------------------------------------

def _new_post(params: Params, auth: AuthInfo) -> posting.NewPost:
    """The request as a NewPost; refuses what we cannot honour rather than silently dropping it."""
    media_ids = _media_ids(params)
    poll = _poll(params)
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
        media_ids=tuple(media_ids) if media_ids is not None else (),
        poll=poll,
    )


def _media_ids(params: Params) -> list[int] | None:
    """`media_ids[]` as ids (None when absent); an id that cannot exist names no attachable media."""
    if "media_ids" not in params:
        return None
    ids = []
    for value in params.get_list("media_ids", max_items=20):
        if not value.isdigit() or len(value) > 19 or int(value) >= 1 << 63:
            raise unprocessable("media_ids names media that cannot be attached")
        ids.append(int(value))
    if len(set(ids)) > posting.MAX_MEDIA:
        raise unprocessable(f"Too many media attachments (maximum is {posting.MAX_MEDIA})")
    return ids


def _poll(params: Params) -> posting.PollSpec | None:
    """`poll[options][]`, `poll[expires_in]`, `poll[multiple]`, `poll[hide_totals]` (form or JSON)."""
    raw = params.raw("poll")
    if raw in (None, "", [], {}):
        return None
    if not isinstance(raw, dict):
        raise unprocessable("Validation failed: poll must be an object")
    inner = Params(raw)
    return posting.parse_poll(inner.get_list("options", max_items=20),
                              inner.get_int("expires_in", None, minimum=0, maximum=1 << 31),
                              bool(inner.get_bool("multiple", False)), bool(inner.get_bool("hide_totals", False)))


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
    created = None
    try:
        async with write_session(request.app[SESSIONMAKER]) as session:
            post = await _replayed(session, me, key) if key else None
            if post is None:
                author = (await session.execute(posting.AUTHOR, {"id": me, "app": new.application_id})).one()
                created = await posting.create_post(session, author, new, _site(request))
                post = created.post
                if key:
                    session.add(IdempotentResult(actor_id=me, key=key, post_id=post.id))
                    await session.flush()
            post_id = post.id
    except IntegrityError:
        # The same key raced in twice: the other request won; answer with its post.
        async with write_session(request.app[SESSIONMAKER]) as session:
            post = await _replayed(session, me, key) if key else None
            if post is None:
                raise
            post_id = post.id
        created = None
    if created is None:  # a replay: the post as it is now
        return await _render_committed(request, post_id, me)
    return await _render_created(request, created)


async def _render_created(request: web.Request, created: posting.Created) -> web.Response:
    """Answer a post just created from what its creation stored: only its accounts are read, after the
    commit (GET /api/v1/statuses/:id gives the same entity; a test compares them)."""
    batch = StatusBatch(_base_url(request), created.viewer)
    batch.add_created(created.post, created.mentions, created.tags, created.media, created.poll, created.app,
                      created.author)
    async with read_session(request.app[SESSIONMAKER]) as session:
        await batch.load_created(session)
    return json_response(batch.render(created.post))


# --- reading --------------------------------------------------------------------------------------

async def get_status(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id: the status (a boost shows its original inside), or 404 if not visible."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_post(session, viewer, post_id)
        return json_response(await render_status(session, post, viewer, _base_url(request)))


async def get_context(request: web.Request) -> web.Response:
    """Ancestors (oldest first) and descendants (depth first, by id) that the viewer may see."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        thread = await _thread(session, viewer, post)
        ancestors = await _ancestors(session, viewer, post, thread or {})
        descendants = _depth_first(post, list(thread.values()) if thread is not None
                                   else await _replies_by_level(session, viewer, post))
        rendered = await render_statuses(session, ancestors + descendants, viewer, _base_url(request))
    return json_response({"ancestors": rendered[:len(ancestors)], "descendants": rendered[len(ancestors):]})


async def _thread(session: AsyncSession, viewer: Viewer, post: Post) -> dict[int, Post] | None:
    """The other posts of `post`'s thread that the viewer sees, by id (None for a post without a
    thread id: received from elsewhere)."""
    if post.thread_id is None:
        return None
    rows = await session.scalars(select(Post).where(
        Post.thread_id == post.thread_id, Post.reblog.is_(False), Post.id != post.id, visible_clause(viewer)))
    return {p.id: p for p in rows}


async def _ancestors(session: AsyncSession, viewer: Viewer, post: Post, known: dict[int, Post]) -> list[Post]:
    """The parents the viewer sees, up to the first one they do not. A parent among `known` (visible
    posts of the thread, read already) costs no statement; one outside the thread is read alone."""
    chain: list[Post] = []
    parent_id = post.in_reply_to_id
    while parent_id is not None and len(chain) < MAX_THREAD_DEPTH:
        parent = known.get(parent_id)
        if parent is None:
            parent = await session.scalar(select(Post).where(Post.id == parent_id, visible_clause(viewer)))
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.in_reply_to_id
    chain.reverse()
    return chain


def _depth_first(post: Post, candidates: list[Post]) -> list[Post]:
    """Replies below `post` reachable through `candidates` (posts the viewer sees), depth first."""
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

Action = Callable[[AsyncSession, int, int], Awaitable[Post]]


async def _act(request: web.Request, action: Action) -> web.Response:
    """Run `action(session, me, post_id)` in one write transaction and answer the status it returns."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await action(session, me, post_id)
        shown = post.id
    return await _render_committed(request, shown, me)


async def favourite_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/favourite (idempotent); answers the status favourited."""
    return await _act(request, posting.create_favourite)


async def unfavourite_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unfavourite (idempotent); answers the status."""
    return await _act(request, posting.delete_favourite)


async def _reblog(session: AsyncSession, me: int, post_id: int) -> Post:
    return await posting.create_reblog(session, await get_fast(session, Actor, me), post_id)


async def _unreblog(session: AsyncSession, me: int, post_id: int) -> Post:
    return await posting.delete_reblog(session, await get_fast(session, Actor, me), post_id)


async def reblog_status(request: web.Request) -> web.Response:
    """Boost: answers the boost (a status whose `reblog` is the original), as Mastodon does.

    A `visibility` parameter is ignored: a boost always keeps its original's audience (never wider)."""
    return await _act(request, _reblog)


async def unreblog_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unreblog (idempotent); answers the original status."""
    return await _act(request, _unreblog)


# --- who favourited / boosted ---------------------------------------------------------------------

async def get_favourited_by(request: web.Request) -> web.Response:
    """Accounts that favourited the status, newest first, paged with a Link header."""
    me = require_viewer(request)
    post_id = path_id(request)
    page = get_page(await read_params(request), default=40, maximum=80)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        query = select(Favourite.id, Favourite.actor_id).where(
            Favourite.post_id == post.id, Favourite.actor_id.not_in(blocked_with([me])))
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
                 .where(Post.reblog_of_id == post.id, Actor.kind != GROUP, Post.author_id.not_in(blocked_with([me]))))
        rows, more = page.trim(list(await session.execute(page.apply(query, Post.id))))
        accounts = await render_accounts(session, [r.author_id for r in rows], _base_url(request))
    return _paged(request, accounts, page, [r.id for r in rows], more)


def _paged(request: web.Request, data: list[Any], page: Any, ids: list[int], more: bool) -> web.Response:
    link = link_header(request, _base_url(request), page, ids, more)
    return json_response(data, headers={"Link": link} if link else None)



# --- edits ----------------------------------------------------------------------------------------

def _post_edit(params: Params) -> posting.PostEdit:
    media_ids = _media_ids(params)
    attributes = params.get_dict("media_attributes") or {}
    if not all(isinstance(a, dict) for a in attributes.values()):
        raise unprocessable("Validation failed: media_attributes must be a list of objects")
    return posting.PostEdit(
        text=params.get_str("status", "") or "",
        spoiler_text=params.get_str("spoiler_text", "") or "",
        sensitive=params.get_bool("sensitive", None),
        language=(params.get_str("language") or "").lower() or None,
        media_ids=tuple(media_ids) if media_ids is not None else None,
        media_attributes=tuple(attributes.values()),
        poll=_poll(params),
    )


async def edit_status(request: web.Request) -> web.Response:
    """PUT /api/v1/statuses/:id: the author edits text, warning, media and poll (not the visibility)."""
    me = require_viewer(request)
    post_id = path_id(request)
    edit = _post_edit(await read_params(request))
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await posting.get_own_post(session, me, post_id)
        if post.reblog_of_id is not None:
            raise ApiError(403, "This action is not allowed")
        await posting.edit_post(session, post, edit, _site(request))
    return await _render_committed(request, post_id, me)


async def get_history(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/history: every version, oldest (the original) first."""
    me = require_viewer(request)
    post_id = path_id(request)
    base_url = _base_url(request)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        post = await posting.get_visible_original(session, viewer, post_id)
        edits = list(await session.scalars(select(StatusEdit).where(StatusEdit.post_id == post.id)
                                           .order_by(StatusEdit.created_at, StatusEdit.id)))
        if not edits:  # never edited: the current version is the whole history
            current = await render_status(session, post, viewer, base_url)
            return json_response([{key: current[key] for key in (
                "content", "spoiler_text", "sensitive", "created_at", "account", "media_attachments", "emojis")}
                | {"poll": _history_poll(current["poll"])}])
        media_ids = {i for e in edits for i in e.media_ids}
        media = {m.id: m for m in await session.scalars(
            select(MediaAttachment).where(MediaAttachment.id.in_(media_ids)))} if media_ids else {}
        accounts = await render_accounts(session, [post.author_id], base_url)
    return json_response([_edit_to_api(e, accounts[0], media, base_url) for e in edits])


def _history_poll(poll: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"options": [{"title": o["title"]} for o in poll["options"]]} if poll else None


def _edit_to_api(edit: StatusEdit, account: dict[str, Any], media: dict[int, MediaAttachment],
                 base_url: str) -> dict[str, Any]:
    attachments = []
    for media_id, description in zip(edit.media_ids, edit.media_descriptions or [""] * len(edit.media_ids)):
        row = media.get(media_id)
        if row is not None:
            attachments.append(media_to_api(row, base_url) | {"description": description or None})
    return {
        "content": edit.content,
        "spoiler_text": edit.spoiler_text,
        "sensitive": edit.sensitive,
        "created_at": iso(edit.created_at),
        "account": account,
        "poll": {"options": [{"title": t} for t in edit.poll_options]} if edit.poll_options is not None else None,
        "media_attachments": attachments,
        "emojis": [],
    }


async def get_source(request: web.Request) -> web.Response:
    """GET /api/v1/statuses/:id/source: what the author typed, for the edit form (the author only)."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with request.app[SESSIONMAKER]() as session:
        post = await posting.get_own_post(session, me, post_id)
    return json_response({"id": str(post.id), "text": post.source, "spoiler_text": post.spoiler_text or ""})


# --- bookmarks and pins ---------------------------------------------------------------------------

async def _bookmark(session: AsyncSession, me: int, post_id: int) -> Post:
    post = await posting.get_visible_original(session, await load_viewer(session, me), post_id)
    await posting.insert_once(session, Bookmark, {"id": new_id(), "actor_id": me, "post_id": post.id,
                                                  "created_at": utcnow()}, ["actor_id", "post_id"])
    return post


async def _unbookmark(session: AsyncSession, me: int, post_id: int) -> Post:
    post = await posting.get_visible_original(session, await load_viewer(session, me), post_id)
    await session.execute(delete(Bookmark).where(Bookmark.actor_id == me, Bookmark.post_id == post.id))
    return post


async def bookmark_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/bookmark (idempotent; visible statuses only)."""
    return await _act(request, _bookmark)


async def unbookmark_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unbookmark (idempotent)."""
    return await _act(request, _unbookmark)


async def pin_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/pin: one's own public, unlisted or private status; at most five."""
    me = require_viewer(request)
    post_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        post = await posting.get_own_post(session, me, post_id)
        if post.reblog_of_id is not None or post.visibility == DIRECT:
            raise unprocessable("Validation failed: This post cannot be pinned")
        # Lock the author's row (PostgreSQL) so that two pins at once cannot pass the limit together.
        await session.execute(select(Actor.id).where(Actor.id == me).with_for_update())
        pinned = set(await session.scalars(select(Pin.post_id).where(Pin.actor_id == me)))
        if post.id not in pinned:
            if len(pinned) >= MAX_PINS:
                raise unprocessable(f"Validation failed: You can pin at most {MAX_PINS} posts")
            session.add(Pin(id=new_id(), actor_id=me, post_id=post.id))
            await session.flush()
    return await _render_committed(request, post_id, me)


async def _unpin(session: AsyncSession, me: int, post_id: int) -> Post:
    post = await posting.get_own_post(session, me, post_id)
    await session.execute(delete(Pin).where(Pin.actor_id == me, Pin.post_id == post.id))
    return post


async def unpin_status(request: web.Request) -> web.Response:
    """POST /api/v1/statuses/:id/unpin (idempotent)."""
    return await _act(request, _unpin)
