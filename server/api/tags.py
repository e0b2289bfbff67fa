"""Hashtags: following them (their posts come to the home timeline), the Tag entity, featured tags.

Following stores the tag's category (`models.categories.canonical`), so following `#zoekertje` brings
`#annonce` posts too; the fan-out happens when a post is made (`models.timeline.tag_followers_who_see`).
Featured tags are shown on a resident's profile with their count of public posts (at most ten).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.audience import Viewer, load_viewer, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.db import read_session, write_session
from voisinage.models.ids import new_id
from voisinage.models.post import PUBLIC, Post, PostTag
from voisinage.models.tag_follow import FeaturedTag, TagFollow

from ..auth import require_viewer
from ..errors import ApiError, json_response, not_found, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from .accounts import get_visible_actor
from .params import get_page, link_header, path_id, read_params

MAX_FEATURED = 10
MAX_TAG_LENGTH = 100
HISTORY_DAYS = 7
SUGGESTIONS = 10
TAG_NAME = re.compile(r"^\w*[^\W\d_]\w*$")


def tag_name(raw: str) -> str | None:
    """A hashtag as written in a URL or parameter (`#` optional), lower-cased; None when invalid."""
    name = raw.strip().lstrip("#").lower()
    if not name or len(name) > MAX_TAG_LENGTH or not TAG_NAME.match(name):
        return None
    return name


def _url(base_url: str, name: str) -> str:
    return f"{base_url}/tags/{name}"


async def _history(session: AsyncSession, viewer: Viewer, key: str) -> list[dict[str, str]]:
    """Mastodon's `history`: per day (newest first, a week), the posts with the tag and their authors,
    among the posts the viewer may see."""
    today = utcnow().date()
    since = dt.datetime.combine(today - dt.timedelta(days=HISTORY_DAYS - 1), dt.time(), tzinfo=dt.UTC)
    rows = (await session.execute(
        select(Post.created_at, Post.author_id).join(PostTag, PostTag.post_id == Post.id)
        .where(PostTag.canonical == key, Post.reblog.is_(False), Post.created_at >= since,
               visible_clause(viewer)))).all()
    days: dict[dt.date, tuple[int, set[int]]] = {}
    for created_at, author_id in rows:
        uses, authors = days.setdefault(created_at.date(), (0, set()))
        days[created_at.date()] = (uses + 1, authors | {author_id})
    out = []
    for back in range(HISTORY_DAYS):
        day = today - dt.timedelta(days=back)
        uses, authors = days.get(day, (0, set()))
        stamp = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())
        out.append({"day": str(stamp), "uses": str(uses), "accounts": str(len(authors))})
    return out


async def _tag_entity(session: AsyncSession, viewer: Viewer, name: str, base_url: str) -> dict[str, Any]:
    key = canonical(name)[:MAX_TAG_LENGTH]
    following = await session.scalar(
        select(TagFollow.id).where(TagFollow.actor_id == viewer.actor_id, TagFollow.name == key))
    return {"name": name, "url": _url(base_url, name), "history": await _history(session, viewer, key),
            "following": following is not None}


def _name_from_path(request: web.Request) -> str:
    name = tag_name(request.match_info["name"])
    if name is None:
        raise not_found()
    return name


async def get_tag(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/tags/:name: the Tag entity with `following` and a week of `history`."""
    me = require_viewer(request)
    name = _name_from_path(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        return json_response(await _tag_entity(session, viewer, name, request.app[SETTINGS].base_url))


async def follow_tag(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/tags/:name/follow (idempotent): the tag's category is followed."""
    me = require_viewer(request)
    name = _name_from_path(request)
    key = canonical(name)[:MAX_TAG_LENGTH]
    try:
        async with write_session(request.app[SESSIONMAKER]) as session:
            exists_ = await session.scalar(select(TagFollow.id).where(TagFollow.actor_id == me, TagFollow.name == key))
            if exists_ is None:
                session.add(TagFollow(id=new_id(), actor_id=me, name=key))
    except IntegrityError:
        pass  # the same follow raced in: it exists, which is what was asked
    return await get_tag(request)


async def unfollow_tag(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/tags/:name/unfollow (idempotent)."""
    me = require_viewer(request)
    name = _name_from_path(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        await session.execute(delete(TagFollow).where(
            TagFollow.actor_id == me, TagFollow.name == canonical(name)[:MAX_TAG_LENGTH]))
    return await get_tag(request)


async def get_followed_tags(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/followed_tags: the tags (categories) I follow, newest first, paged with a Link."""
    me = require_viewer(request)
    params = await read_params(request)
    page = get_page(params, default=100, maximum=200)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        query = select(TagFollow).where(TagFollow.actor_id == me)
        rows, more = page.trim(list(await session.scalars(page.apply(query, TagFollow.id))))
        data = [await _tag_entity(session, viewer, row.name, base_url) for row in rows]
    link = link_header(request, base_url, page, [row.id for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


# -- featured tags ---------------------------------------------------------------------------------

async def _featured_to_api(session: AsyncSession, actor_id: int, tags: list[FeaturedTag],
                           base_url: str) -> list[dict[str, Any]]:
    """FeaturedTag entities with the actor's count of public posts for each (one query)."""
    stats: dict[str, tuple[int, Any]] = {}
    if tags:
        rows = await session.execute(
            select(PostTag.canonical, func.count(func.distinct(Post.id)), func.max(Post.created_at))
            .join(Post, Post.id == PostTag.post_id)
            .where(Post.author_id == actor_id, Post.reblog.is_(False), Post.visibility == PUBLIC,
                   PostTag.canonical.in_([t.name for t in tags]))
            .group_by(PostTag.canonical))
        stats = {key: (count, last) for key, count, last in rows.all()}
    out = []
    for tag in tags:
        count, last = stats.get(tag.name, (0, None))
        if isinstance(last, str):  # SQLite hands max() of a datetime column back as text
            last = dt.datetime.fromisoformat(last)
        out.append({"id": str(tag.id), "name": tag.display_name, "url": _url(base_url, tag.display_name),
                    "statuses_count": str(count), "last_status_at": last.strftime("%Y-%m-%d") if last else None})
    return out


async def _featured_of(session: AsyncSession, actor_id: int) -> list[FeaturedTag]:
    return list(await session.scalars(
        select(FeaturedTag).where(FeaturedTag.actor_id == actor_id).order_by(FeaturedTag.id)))


async def get_featured_tags(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/featured_tags: mine."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        tags = await _featured_of(session, me)
        return json_response(await _featured_to_api(session, me, tags, request.app[SETTINGS].base_url))


async def get_account_featured_tags(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/accounts/:id/featured_tags."""
    require_viewer(request)
    actor_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        await get_visible_actor(session, actor_id)
        tags = await _featured_of(session, actor_id)
        return json_response(await _featured_to_api(session, actor_id, tags, request.app[SETTINGS].base_url))


async def create_featured_tag(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/featured_tags (`name`): 422 for an invalid name, a repeat, or more than ten."""
    me = require_viewer(request)
    params = await read_params(request)
    raw = params.get_str("name", required=True, max_len=MAX_TAG_LENGTH + 1) or ""
    name = tag_name(raw)
    if name is None:
        raise unprocessable("Validation failed: Name is not a valid hashtag")
    key = canonical(name)[:MAX_TAG_LENGTH]
    try:
        async with write_session(request.app[SESSIONMAKER]) as session:
            tags = await _featured_of(session, me)
            if any(t.name == key for t in tags):
                raise unprocessable("Validation failed: Name has already been taken")
            if len(tags) >= MAX_FEATURED:
                raise unprocessable(f"Validation failed: You can only feature up to {MAX_FEATURED} hashtags")
            tag = FeaturedTag(id=new_id(), actor_id=me, name=key, display_name=name)
            session.add(tag)
            await session.flush()
            data = (await _featured_to_api(session, me, [tag], request.app[SETTINGS].base_url))[0]
    except IntegrityError:
        raise unprocessable("Validation failed: Name has already been taken") from None
    return json_response(data)


async def delete_featured_tag(request: web.Request) -> web.StreamResponse:
    """DELETE /api/v1/featured_tags/:id: one of mine (404 otherwise)."""
    me = require_viewer(request)
    tag_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        result = await session.execute(
            delete(FeaturedTag).where(FeaturedTag.id == tag_id, FeaturedTag.actor_id == me))
        if not result.rowcount:
            raise ApiError(404, "Record not found")
    return json_response({})


async def get_featured_tag_suggestions(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/featured_tags/suggestions: the tags I use most (Tag entities), not yet featured."""
    me = require_viewer(request)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        featured = select(FeaturedTag.name).where(FeaturedTag.actor_id == me)
        uses = func.count(PostTag.post_id)
        rows = await session.execute(
            select(PostTag.name, uses).join(Post, Post.id == PostTag.post_id)
            .where(Post.author_id == me, Post.reblog.is_(False), PostTag.canonical.not_in(featured))
            .group_by(PostTag.name).order_by(uses.desc(), PostTag.name).limit(SUGGESTIONS))
        data = [await _tag_entity(session, viewer, name, base_url) for name, _ in rows.all()]
    return json_response(data)
