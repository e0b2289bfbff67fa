"""/api/v1/bookmarks and /api/v1/favourites: the viewer's own lists, newest first.

As Mastodon, both are paged by the bookmark's (favourite's) own id, so clients must follow the `Link`
header rather than build `max_id` from status ids. A listed status the viewer may no longer see is left
out (the visibility rule applies to every read).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from voisinage.models.audience import load_viewer, visible_clause
from voisinage.models.bookmark import Bookmark
from voisinage.models.db import read_session
from voisinage.models.interaction import Favourite
from voisinage.models.post import Post

from ..auth import require_viewer
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from .params import get_page, link_header, read_params
from .to_api import render_statuses


async def _own_list(request: web.Request, model: Any) -> web.Response:
    me = require_viewer(request)
    page = get_page(await read_params(request), default=20, maximum=40)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        query = (select(model.id, Post).join(Post, Post.id == model.post_id)
                 .where(model.actor_id == me, visible_clause(viewer)))
        rows, more = page.trim(list((await session.execute(page.apply(query, model.id))).all()))
        data = await render_statuses(session, [row[1] for row in rows], viewer, base_url)
    link = link_header(request, base_url, page, [row[0] for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_bookmarks(request: web.Request) -> web.Response:
    """GET /api/v1/bookmarks."""
    return await _own_list(request, Bookmark)


async def get_favourites(request: web.Request) -> web.Response:
    """GET /api/v1/favourites."""
    return await _own_list(request, Favourite)
