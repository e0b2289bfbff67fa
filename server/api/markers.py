"""Read markers (/api/v1/markers): the last status read in `home` and `notifications`, per resident.

Each save bumps the marker's `version`, so apps can tell whether another app moved it meanwhile.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from voisinage.models.base import utcnow
from voisinage.models.db import read_session, write_session
from voisinage.models.markers import TIMELINES, Marker

from ..auth import require_viewer
from ..errors import json_response, unprocessable
from ..keys import SESSIONMAKER
from ..services.filtering import iso
from .params import Params, read_params


def marker_to_api(marker: Marker) -> dict[str, Any]:
    return {"last_read_id": marker.last_read_id, "version": marker.version, "updated_at": iso(marker.updated_at)}


async def get_markers(request: web.Request) -> web.Response:
    """GET /api/v1/markers?timeline[]=home&timeline[]=notifications (unknown timelines are ignored)."""
    me = require_viewer(request)
    params = await read_params(request)
    wanted = [t for t in params.get_list("timeline", max_items=10) if t in TIMELINES]
    if not wanted:
        return json_response({})
    async with read_session(request.app[SESSIONMAKER]) as session:
        rows = await session.scalars(select(Marker).where(Marker.owner_id == me, Marker.timeline.in_(wanted)))
        return json_response({m.timeline: marker_to_api(m) for m in rows})


def _new_positions(params: Params) -> dict[str, str]:
    """`home[last_read_id]=…` (form) or `{"home": {"last_read_id": …}}` (JSON), for each timeline."""
    positions: dict[str, str] = {}
    for timeline in TIMELINES:
        entry = params.get_dict(timeline)
        if entry is None:
            continue
        value = entry.get("last_read_id")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.isdigit() or len(value) > 19:
            raise unprocessable(f"{timeline}[last_read_id] must be a status or notification id")
        positions[timeline] = value
    if not positions:
        raise unprocessable("give home[last_read_id] or notifications[last_read_id]")
    return positions


async def save_markers(request: web.Request) -> web.Response:
    """POST /api/v1/markers: move the given markers; answers with the saved ones."""
    me = require_viewer(request)
    positions = _new_positions(await read_params(request))
    async with write_session(request.app[SESSIONMAKER]) as session:
        existing = {m.timeline: m for m in await session.scalars(
            select(Marker).where(Marker.owner_id == me, Marker.timeline.in_(positions)))}
        out = {}
        for timeline, last_read_id in positions.items():
            marker = existing.get(timeline)
            if marker is None:
                marker = Marker(owner_id=me, timeline=timeline, last_read_id=last_read_id, version=1,
                                updated_at=utcnow())
                session.add(marker)
            else:
                marker.last_read_id = last_read_id
                marker.version += 1
                marker.updated_at = utcnow()
            out[timeline] = marker_to_api(marker)
    return json_response(out)
