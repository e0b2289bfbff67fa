"""Timelines (DESIGN.md "Feeds"): home, the commune and nearby feeds, and category/tag feeds.

All chronological, all behind a token, all filtered by the one visibility rule (blocks included) and by
the reader's active mutes (`muted_clause`). Each page is one query
for its rows, then one batched render (`to_api.render_statuses`). The home and public queries are
built once per shape with bind parameters (building a statement costs more than running it).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from aiohttp import web
from sqlalchemy import and_, bindparam, exists, select

from voisinage.models.actor import Actor
from voisinage.models.audience import Viewer, muted_clause, visible_clause
from voisinage.models.base import utcnow
from voisinage.models.categories import canonical
from voisinage.models.db import fast, read_session
from voisinage.models.filters import Filter
from voisinage.models.media import MediaAttachment
from voisinage.models.post import PUBLIC, Post, PostTag
from voisinage.models.timeline import HomeEntry
from voisinage.models.village import Village

from ..auth import require_viewer
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..services.filtering import apply_filters, exclusive_members
from .params import Page, Params, get_page, link_header, read_params
from .to_api import IDS, render_statuses, status_keys, status_keys_and_originals

MAX_TAGS = 10
MAX_TAG_LENGTH = 100  # as PostTag.name


# Bind parameters of the statements below, which are built once per shape and run for every reader.
ME, VILLAGE, NOW = bindparam("me"), bindparam("village"), bindparam("now")


def _reader_columns() -> tuple[Any, Any]:
    """The reader's home village (its actor) and whether they have any filter."""
    village = (select(Village.actor_id).join(Actor, Actor.village_id == Village.id)
               .where(Actor.id == ME).scalar_subquery())
    return village.label("village"), exists(select(Filter.id).where(Filter.owner_id == ME)).label("filters")


@functools.cache
def _reader_statement() -> Any:
    return fast(select(*_reader_columns()))


async def _load_reader(session: Any, me: int) -> tuple[Viewer, bool]:
    """The reader (with their home village) and whether they have any filter, in one query."""
    village_actor_id, filters = (await session.execute(_reader_statement(), {"me": me})).one()
    return Viewer(me, village_actor_id), bool(filters)


def _values(viewer: Viewer, page: Page) -> dict[str, Any]:
    return {"me": viewer.actor_id, "village": viewer.village_actor_id, "now": utcnow(), **page.values()}


def _page_like(shape: tuple[bool, bool, bool]) -> Page:
    """A page of this shape (its values do not matter: `apply(..., bound=True)` binds them)."""
    return Page(*(0 if present else None for present in shape), limit=0)


@functools.lru_cache(maxsize=16)
def _home_candidates(shape: tuple[bool, bool, bool]) -> Any:
    """The reader's home rows in the page's range, newest first (oldest first for `min_id`), each with
    the reader's village and whether they have filters (`_reader_columns`: one round trip for both)."""
    query = select(HomeEntry.post_id, *_reader_columns()).where(HomeEntry.owner_id == ME)
    return fast(_page_like(shape).apply(query, HomeEntry.post_id, bound=True))


@functools.lru_cache(maxsize=8)
def _home_statuses(has_village: bool, ascending: bool) -> Any:
    """The statuses of candidate home rows that the reader may still see (the rule is checked again at
    reading: a block or an unfollow since the fan-out), outside mutes and exclusive lists, with their
    originals' keys (most home rows are villages' announces)."""
    viewer = Viewer(ME, VILLAGE if has_village else None)
    query = status_keys_and_originals().where(Post.id.in_(IDS), visible_clause(viewer), ~muted_clause(ME, now=NOW),
                                              Post.author_id.not_in(exclusive_members(ME)))
    return fast(query.order_by(Post.id.asc() if ascending else Post.id.desc()))


async def _home_rows(session: Any, me: int, page: Page) -> tuple[tuple[Viewer, bool], list[Any]]:
    """The reader (as `_load_reader` gives it) and up to `limit + 1` home statuses of the page, in its
    order.

    Two steps rather than one join: the home rows' primary key (owner, post) gives the page's candidates
    in order at once, and the posts are then looked up by id. As one query, PostgreSQL's planner tends
    to scan every post and sort. Most candidates pass the recheck: a page asks for a quarter more than
    it shows, and when more do not pass, the next candidates (twice as many each time) fill it. An
    empty home needs nothing of its reader but the id."""
    wanted = page.limit + 1
    batch = wanted + max(4, wanted // 4)  # a few spare: the posts' rows are most of a page's SQL
    rows: list[Any] = []
    reader = (Viewer(me, None), False)
    values = _values(reader[0], page)
    while True:
        candidates = list(await session.execute(_home_candidates(page.shape),
                                                   {**values, **page.values(), "page_limit": batch}))
        if candidates:
            reader = (Viewer(me, candidates[0].village), bool(candidates[0].filters))
            rows += await session.execute(_home_statuses(candidates[0].village is not None, page.ascending),
                                             {**values, "village": candidates[0].village,
                                              "ids": [candidate.post_id for candidate in candidates]})
        if len(rows) >= wanted or len(candidates) < batch:
            return reader, rows[:wanted]
        last = candidates[-1].post_id
        bound = {"min_id": last} if page.ascending else {"max_id": last}
        page = dataclasses.replace(page, **bound)
        batch = min(batch * 2, 2000)


@functools.lru_cache(maxsize=64)
def _public_statement(has_village: bool, shape: tuple[bool, bool, bool], local: bool, remote: bool,
                      only_media: bool) -> Any:
    viewer = Viewer(ME, VILLAGE if has_village else None)
    query = status_keys().where(Post.visibility == PUBLIC, Post.reblog.is_(False), visible_clause(viewer),
                                ~muted_clause(ME, now=NOW))
    query = _narrowed(query, local, remote, only_media)
    return fast(_page_like(shape).apply(query, Post.id, bound=True))


async def _respond(request: web.Request, session: Any, reader: tuple[Viewer, bool], page: Page,
                   rows: list[Any], context: str) -> web.Response:
    """Render the page's rows (`limit + 1` at most, in the page's order), apply the reader's filters,
    answer with its Link header. The Link header pages by the rows read, so a page thinned by a `hide`
    filter still leads on."""
    posts, more = page.trim(rows)
    base_url = request.app[SETTINGS].base_url
    viewer, has_filters = reader
    data = await render_statuses(session, posts, viewer, base_url)
    if has_filters:
        data = await apply_filters(session, viewer.actor_id, data, context)
    link = link_header(request, base_url, page, [p.id for p in posts], more)
    return json_response(data, headers={"Link": link} if link else None)


async def get_home(request: web.Request) -> web.Response:
    """My posts, those of accounts I follow, and the announces of the villages I follow."""
    me = require_viewer(request)
    page = get_page(await read_params(request))
    async with read_session(request.app[SESSIONMAKER]) as session:
        reader, rows = await _home_rows(session, me, page)
        return await _respond(request, session, reader, page, rows, "home")


async def get_public(request: web.Request) -> web.Response:
    """`local=true`: the commune; `remote=true`: what partners' villages send us; neither: nearby."""
    me = require_viewer(request)
    params = await read_params(request)
    page = get_page(params)
    local = bool(params.get_bool("local", False))
    remote = bool(params.get_bool("remote", False))
    only_media = bool(params.get_bool("only_media", False))
    async with read_session(request.app[SESSIONMAKER]) as session:
        reader = await _load_reader(session, me)
        viewer = reader[0]
        statement = _public_statement(viewer.village_actor_id is not None, page.shape, local, remote, only_media)
        rows = list(await session.execute(statement, _values(viewer, page)))
        return await _respond(request, session, reader, page, rows, "public")


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
    async with read_session(request.app[SESSIONMAKER]) as session:
        reader = await _load_reader(session, me)
        viewer = reader[0]
        query = status_keys().where(Post.reblog.is_(False), _tag_filter(params, hashtag), visible_clause(viewer),
                                   ~muted_clause(me))
        query = _narrowed(query, local, remote, only_media)
        rows = list(await session.execute(page.apply(query, Post.id)))
        return await _respond(request, session, reader, page, rows, "public")

