"""NodeInfo 2.0 and 2.1: what software this is, how many residents, and which villages it has.

Registrations are never open in the NodeInfo sense: a household code sent by post is needed.
"""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from typing import Any

from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.post import Post
from voisinage.models.resident import Resident
from voisinage.models.village import Village

from .context import FEDERATION, FederationContext

SOFTWARE = "voisinage"
REPOSITORY = "https://codeberg.org/voisinage/voisinage"
SCHEMAS = {
    "2.0": "http://nodeinfo.diaspora.software/ns/schema/2.0",
    "2.1": "http://nodeinfo.diaspora.software/ns/schema/2.1",
}


def software_version() -> str:
    try:
        return metadata.version(SOFTWARE)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _active_since(days: int, now: dt.datetime) -> Any:
    since = now - dt.timedelta(days=days)
    return or_(Resident.last_login_at >= since, Actor.last_status_at >= since)


async def get_usage(session: AsyncSession, now: dt.datetime) -> dict[str, Any]:
    """Residents (total, active in 30 and 180 days) and local posts (boosts excluded)."""
    residents = select(func.count()).select_from(Resident).join(Actor, Actor.id == Resident.actor_id).where(
        Actor.suspended_at.is_(None))
    total = await session.scalar(residents)
    month = await session.scalar(residents.where(_active_since(30, now)))
    half = await session.scalar(residents.where(_active_since(180, now)))
    posts = await session.scalar(select(func.count()).select_from(Post).where(
        Post.local.is_(True), Post.reblog.is_(False)))
    return {"users": {"total": total or 0, "activeMonth": month or 0, "activeHalfyear": half or 0},
            "localPosts": posts or 0}


async def get_villages(session: AsyncSession) -> list[dict[str, str]]:
    rows = await session.execute(select(Village.slug, Village.name).order_by(Village.slug))
    return [{"slug": slug, "name": name} for slug, name in rows]


def nodeinfo_document(version: str, ctx: FederationContext, usage: dict[str, Any],
                      villages: list[dict[str, str]]) -> dict[str, Any]:
    """The NodeInfo `version` ("2.0" or "2.1") document."""
    software: dict[str, Any] = {"name": SOFTWARE, "version": software_version()}
    if version == "2.1":
        software["repository"] = REPOSITORY
    return {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,  # a household code is needed
        "usage": usage,
        "metadata": {"nodeName": ctx.domain, "villages": villages, "registration": "household-code"},
    }


async def get_nodeinfo_links(request: web.Request) -> web.Response:
    """GET /.well-known/nodeinfo"""
    ctx = request.app[FEDERATION]
    links = [{"rel": schema, "href": f"{ctx.base_url}/nodeinfo/{version}"} for version, schema in SCHEMAS.items()]
    return web.json_response({"links": links})


async def get_nodeinfo(request: web.Request) -> web.Response:
    """GET /nodeinfo/2.0 and /nodeinfo/2.1"""
    version = request.match_info["version"]
    if version not in SCHEMAS:
        raise web.HTTPNotFound()
    ctx = request.app[FEDERATION]
    now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
    async with ctx.sessionmaker() as session:
        usage = await get_usage(session, now)
        villages = await get_villages(session)
    response = web.json_response(nodeinfo_document(version, ctx, usage, villages))
    response.headers["Content-Type"] = f'application/json; profile="{SCHEMAS[version]}#"'
    response.headers["Cache-Control"] = "max-age=1800, public"
    return response


def setup_nodeinfo_routes(app: web.Application) -> None:
    """Add /.well-known/nodeinfo and /nodeinfo/{2.0,2.1}."""
    app.router.add_get("/.well-known/nodeinfo", get_nodeinfo_links)
    app.router.add_get(r"/nodeinfo/{version:2\.[01]}", get_nodeinfo)
