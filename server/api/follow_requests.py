"""/api/v1/follow_requests: who waits for my approval (a locked account), authorize, reject.

Authorizing makes the follow accepted (counters, the follower's home backfill) and removes the
`follow_request` notification without adding a `follow` one, as Mastodon does; rejecting removes the
request and its notification. The rules live in `services/relationships.py`.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from voisinage.models.actor import Actor
from voisinage.models.db import read_session, write_session
from voisinage.models.follow import PENDING, Follow

from ..auth import require_viewer
from ..errors import ApiError, json_response, not_found
from ..keys import SESSIONMAKER, SETTINGS
from ..services.relationships import authorize_request, reject_request
from . import to_api
from .params import get_page, link_header, path_id, read_params


async def get_follow_requests(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/follow_requests: accounts whose follow of me is pending, newest first (paged)."""
    me = require_viewer(request)
    page = get_page(await read_params(request), default=40, maximum=80)
    base_url = request.app[SETTINGS].base_url
    query = (select(Follow.id, Follow.follower_id).join(Actor, Actor.id == Follow.follower_id)
             .where(Follow.target_id == me, Follow.state == PENDING, Actor.suspended_at.is_(None)))
    async with read_session(request.app[SESSIONMAKER]) as session:
        rows, more = page.trim(list((await session.execute(page.apply(query, Follow.id))).all()))
        data = await to_api.render_accounts(session, [row[1] for row in rows], base_url)
    link = link_header(request, base_url, page, [row[0] for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


async def _answer(request: web.Request, accept: bool) -> web.StreamResponse:
    me = require_viewer(request)
    follower_id = path_id(request, "account_id")
    async with write_session(request.app[SESSIONMAKER]) as session:
        target = await session.get(Actor, me)
        if target is None:
            raise ApiError(401, "The access token is invalid")
        done = (await authorize_request(session, target, follower_id) if accept
                else await reject_request(session, me, follower_id))
        if not done:
            raise not_found()
        relationship = (await to_api.relationships_to_api(session, me, [follower_id]))[0]
    return json_response(relationship)


async def authorize_follow_request(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/follow_requests/:account_id/authorize (404 when no request waits)."""
    return await _answer(request, accept=True)


async def reject_follow_request(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/follow_requests/:account_id/reject (404 when no request waits)."""
    return await _answer(request, accept=False)
