"""/api/v1/directory: the residents of the viewer's own village (DESIGN.md), as Mastodon's profile
directory.

Only residents who stay `discoverable` are listed; suspended accounts and villages never are.
`order=active` (default) sorts by the last status (those who never posted last), `order=new` by
registration. `local=true` and `local=false` answer the same: Voisinage's directory shows no remote
accounts, only one's neighbours.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from voisinage.models.actor import PERSON, Actor
from voisinage.models.db import read_session

from ..auth import require_viewer
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from . import to_api
from .params import read_params

DEFAULT_LIMIT = 40
MAX_LIMIT = 80
MAX_OFFSET = 100_000


async def get_directory(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/directory?order=active|new&limit=&offset=&local=."""
    me = require_viewer(request)
    params = await read_params(request)
    order = params.get_str("order", "active", choices=("active", "new")) or "active"
    limit = params.get_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT, clamp=True) or DEFAULT_LIMIT
    offset = params.get_int("offset", 0, minimum=0, maximum=MAX_OFFSET) or 0
    params.get_bool("local", True)  # validated; both values list the neighbours (see the module)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        village_id = await session.scalar(select(Actor.village_id).where(Actor.id == me))
        if village_id is None:
            return json_response([])  # an account without a village has no neighbours to list
        query = select(Actor).where(Actor.village_id == village_id, Actor.kind == PERSON, Actor.domain == "",
                                    Actor.discoverable.is_(True), Actor.suspended_at.is_(None))
        if order == "new":
            query = query.order_by(Actor.created_at.desc(), Actor.id.desc())
        else:
            query = query.order_by(Actor.last_status_at.desc().nulls_last(), Actor.id.desc())
        actors = list(await session.scalars(query.limit(limit).offset(offset)))
    return json_response([to_api.account_to_api(a, base_url) for a in actors])
