"""/api/v1/notifications: list (with type and account filters, paged), one, dismiss, clear.

A notification about a status is shown only while its recipient may still see that status (the one
visibility rule decides), so a post that became invisible takes its notifications with it. Nothing
from an account blocked either way is shown, nor from an account muted with `notifications=true` (while
the mute lasts).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import and_, delete, exists, or_, select

from voisinage.models.audience import (
    Viewer,
    active_mutes,
    blocked_with,
    load_viewer,
    visible_clause,
)
from voisinage.models.db import read_session, write_session
from voisinage.models.notification import TYPES, Notification
from voisinage.models.post import Post

from ..auth import require_viewer
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER, SETTINGS
from .params import Params, get_page, link_header, path_id, read_params
from .to_api import render_notifications


def _still_visible(viewer: Viewer) -> Any:
    """Notifications without a status, or whose status the recipient may see; never from an account
    blocked either way, nor from one muted with its notifications."""
    return and_(
        or_(Notification.post_id.is_(None),
            exists(select(Post.id).where(Post.id == Notification.post_id, visible_clause(viewer)))),
        Notification.from_actor_id.not_in(blocked_with([viewer.actor_id])),
        Notification.from_actor_id.not_in(active_mutes(viewer.actor_id, notifications=True)))


def _filters(params: Params) -> list[Any]:
    """`types[]`, `exclude_types[]` (unknown types are ignored, as Mastodon does) and `account_id`."""
    conditions: list[Any] = []
    types = [t for t in params.get_list("types", max_items=len(TYPES) + 10) if t in TYPES]
    if params.get_list("types", max_items=len(TYPES) + 10):
        conditions.append(Notification.kind.in_(types))
    excluded = [t for t in params.get_list("exclude_types", max_items=len(TYPES) + 10) if t in TYPES]
    if excluded:
        conditions.append(Notification.kind.not_in(excluded))
    account_id = params.get_str("account_id")
    if account_id:
        if not account_id.isdigit() or len(account_id) > 19:
            raise ApiError(422, "Validation failed: account_id must be an id")
        conditions.append(Notification.from_actor_id == int(account_id))
    return conditions


async def get_notifications(request: web.Request) -> web.Response:
    """GET /api/v1/notifications: the caller's, newest first, filtered and paged with a Link header."""
    me = require_viewer(request)
    params = await read_params(request)
    page = get_page(params, default=40, maximum=80)
    conditions = _filters(params)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        query = select(Notification).where(Notification.recipient_id == me, _still_visible(viewer), *conditions)
        notes, more = page.trim(list(await session.scalars(page.apply(query, Notification.id))))
        data = await render_notifications(session, notes, viewer, base_url)
    link = link_header(request, base_url, page, [n.id for n in notes], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_notification(request: web.Request) -> web.Response:
    """One of the caller's notifications; anyone else's is 404."""
    me = require_viewer(request)
    note_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        note = await session.scalar(select(Notification).where(
            Notification.id == note_id, Notification.recipient_id == me, _still_visible(viewer)))
        if note is None:
            raise ApiError(404, "Record not found")
        data = await render_notifications(session, [note], viewer, request.app[SETTINGS].base_url)
    if not data:
        raise ApiError(404, "Record not found")
    return json_response(data[0])


async def dismiss_notification(request: web.Request) -> web.Response:
    """Delete one of the caller's notifications."""
    me = require_viewer(request)
    note_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        result = await session.execute(
            delete(Notification).where(Notification.id == note_id, Notification.recipient_id == me))
        if not result.rowcount:
            raise ApiError(404, "Record not found")
    return json_response({})


async def clear_notifications(request: web.Request) -> web.Response:
    """Delete all of the caller's notifications."""
    me = require_viewer(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        await session.execute(delete(Notification).where(Notification.recipient_id == me))
    return json_response({})

