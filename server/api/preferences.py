"""Preferences, trends and announcements: what apps read at launch.

Trends: Voisinage has no ranking algorithm (DESIGN.md: feeds are chronological, nothing is promoted),
so there are never trending tags, statuses or links: `[]` is the real state, not a placeholder.
Announcements: the instance publishes none yet (there is no tool to write them), so the list is
really empty and dismissing any id answers 404.
"""

from __future__ import annotations

from aiohttp import web

from voisinage.models.db import read_session
from voisinage.models.resident import Resident

from ..auth import require_viewer
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER
from .params import path_id


async def get_preferences(request: web.Request) -> web.Response:
    """GET /api/v1/preferences: the posting defaults of the resident's account."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        resident = await session.get(Resident, me)
    if resident is None:
        raise ApiError(403, "This method requires a resident account")
    return json_response({
        "posting:default:visibility": resident.default_visibility,
        "posting:default:sensitive": bool(resident.default_sensitive),
        "posting:default:language": resident.default_language,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
        "reading:autoplay:gifs": False,
    })


async def get_trends(request: web.Request) -> web.Response:
    """GET /api/v1/trends[/tags|/statuses|/links]: always empty, Voisinage ranks nothing (any token)."""
    return json_response([])


async def get_announcements(request: web.Request) -> web.Response:
    """GET /api/v1/announcements: none are published (there is no way to write one yet)."""
    require_viewer(request)
    return json_response([])


async def dismiss_announcement(request: web.Request) -> web.Response:
    """POST /api/v1/announcements/:id/dismiss: no announcement exists, so every id is unknown."""
    require_viewer(request)
    path_id(request)
    raise ApiError(404, "Record not found")
