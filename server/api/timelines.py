"""Timelines (DESIGN.md "Feeds"): home, the commune and nearby feeds, and category/tag feeds.

All chronological, all behind a token, all filtered by the one visibility rule (blocks included) and by
the reader's active mutes (`muted_clause`). Each page is one query
for its rows, then one batched render (`to_api.render_statuses`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import and_, exists, select
from voisinage.models.audience import load_viewer, muted_clause, visible_clause
from voisinage.models.categories import canonical
from voisinage.models.media import MediaAttachment
from voisinage.models.post import PUBLIC, Post, PostTag
from voisinage.models.timeline import HomeEntry

from ..auth import require_viewer
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..services.filtering import apply_filters, exclusive_member_ids
from .params import Page, Params, get_page, link_header, read_params
from .to_api import render_statuses

MAX_TAGS = 10
MAX_TAG_LENGTH = 100  # as PostTag.name


async def _respond(request: web.Request, session: Any, viewer: Any, page: Page, query: Any,
                   key: Any, context: str) -> web.Response:
    """Run the page's one query, render it, apply the reader's filters, answer with its Link header.

    The Link header pages by the rows read, so a page thinned by a `hide` filter still leads on.
    """
    posts, more = page.trim(list(await session.scalars(page.apply(query, key))))
    base_url = request.app[SETTINGS].base_url
    data = await render_statuses(session, posts, viewer, base_url)
    data = await apply_filters(session, viewer.actor_id, data, context)
    link = link_header(request, base_url, page, [p.id for p in posts], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_home(request: web.Request) -> web.Response:
    """My posts, those of accounts I follow, and the announces of the villages I follow."""
    me = require_viewer(request)
    page = get_page(await read_params(request))
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        query = (select(Post).join(HomeEntry, HomeEntry.post_id == Post.id)
                 .where(HomeEntry.owner_id == me, visible_clause(viewer), ~muted_clause(me)))
        exclusive = await exclusive_member_ids(session, me)
        if exclusive:  # members of exclusive lists are read in their list, not at home
            query = query.where(Post.author_id.not_in(exclusive))
        return await _respond(request, session, viewer, page, query, HomeEntry.post_id, "home")


async def get_public(request: web.Request) -> web.Response:
    """`local=true`: the commune; `remote=true`: what partners' villages send us; neither: nearby."""
    me = require_viewer(request)
    params = await read_params(request)
    page = get_page(params)
    local = params.get_bool("local", False)
    remote = params.get_bool("remote", False)
    only_media = params.get_bool("only_media", False)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        query = (select(Post).where(Post.visibility == PUBLIC, Post.reblog.is_(False), visible_clause(viewer),
                                    ~muted_clause(me)))
        query = _narrowed(query, local, remote, only_media)
        return await _respond(request, session, viewer, page, query, Post.id, "public")


def _narrowed(query: Any, local: bool | None, remote: bool | None, only_media: bool | None) -> Any:
    """`local`: posts from here; `remote`: from partners; `only_media`: with photos."""
    if local:
        query = query.where(Post.local.is_(True))
    if remote:
        query = query.where(Post.local.is_(False))
    if only_media:
        query = query.where(_has_media())
    return query


def _has_media() -> Any:
    return exists(select(MediaAttachment.id).where(MediaAttachment.post_id == Post.id))


def clean_tag(name: str) -> str:
    """A tag as asked for in a URL or parameter: without `#`, NUL characters, or excess length."""
    return name.replace("\x00", "").lstrip("#")[:MAX_TAG_LENGTH]


def _tag_filter(params: Params, hashtag: str) -> Any:
    """Posts carrying the tag (or any of `any[]`), all of `all[]`, none of `none[]`; synonyms count."""
    def has(names: list[str]) -> Any:
        wanted = sorted({canonical(clean_tag(n))[:MAX_TAG_LENGTH] for n in names})
        return exists(select(PostTag.post_id).where(PostTag.post_id == Post.id, PostTag.canonical.in_(wanted)))

    conditions = [has([hashtag, *params.get_list("any", max_items=MAX_TAGS)])]
    for name in params.get_list("all", max_items=MAX_TAGS):
        conditions.append(has([name]))
    excluded = params.get_list("none", max_items=MAX_TAGS)
    if excluded:
        conditions.append(~has(excluded))
    return and_(*conditions)


async def get_tag(request: web.Request) -> web.Response:
    """A category or hashtag feed: `/tag/zoekertje` shows `#annonce` posts, within what I may see."""
    me = require_viewer(request)
    params = await read_params(request)
    page = get_page(params)
    hashtag = request.match_info["hashtag"]
    local = params.get_bool("local", False)
    remote = params.get_bool("remote", False)
    only_media = params.get_bool("only_media", False)
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        query = select(Post).where(Post.reblog.is_(False), _tag_filter(params, hashtag), visible_clause(viewer),
                                   ~muted_clause(me))
        query = _narrowed(query, local, remote, only_media)
        return await _respond(request, session, viewer, page, query, Post.id, "public")

