"""Filters: v2 (/api/v2/filters, their keywords and statuses) and v1 (/api/v1/filters) as Mastodon 4.

A v1 filter is a v2 filter's keyword: its id is the keyword's id, its `phrase` the keyword, and a
v1 create makes a v2 filter with that one keyword. Only the owner sees a filter (404 for anyone else).
Every change publishes a `filters_changed` event to the owner's streams. The matching itself is in
`services.filtering`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.audience import can_see, load_viewer
from voisinage.models.base import utcnow
from voisinage.models.db import read_session, write_session
from voisinage.models.events import Event, queue_event
from voisinage.models.filters import (
    ACTIONS,
    CONTEXTS,
    Filter,
    FilterKeyword,
    FilterStatus,
)

from ..auth import require_viewer
from ..errors import json_response, not_found, unprocessable
from ..keys import SESSIONMAKER
from ..services.filtering import (
    filter_status_to_api,
    filter_to_api,
    iso,
    keyword_to_api,
)
from .params import Params, parse_id, path_id, read_params

TITLE_MAX = 200
KEYWORD_MAX = 200
MAX_FILTERS = 100
MAX_KEYWORDS = 100
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


# -- shared helpers ----------------------------------------------------------------------------------

async def get_own_filter(session: AsyncSession, owner_id: int, filter_id: int) -> Filter:
    flt = await session.scalar(select(Filter).where(Filter.id == filter_id, Filter.owner_id == owner_id))
    if flt is None:
        raise not_found()
    return flt


async def get_own_keyword(session: AsyncSession, owner_id: int, keyword_id: int) -> tuple[FilterKeyword, Filter]:
    row = (await session.execute(
        select(FilterKeyword, Filter).join(Filter, Filter.id == FilterKeyword.filter_id)
        .where(FilterKeyword.id == keyword_id, Filter.owner_id == owner_id))).first()
    if row is None:
        raise not_found()
    return row[0], row[1]


async def render_filters(session: AsyncSession, filters: list[Filter]) -> list[dict[str, Any]]:
    """v2 Filter entities with their keywords and statuses (two queries for the lot)."""
    ids = [f.id for f in filters]
    keywords: dict[int, list[FilterKeyword]] = {i: [] for i in ids}
    statuses: dict[int, list[FilterStatus]] = {i: [] for i in ids}
    if ids:
        for kw in await session.scalars(select(FilterKeyword).where(FilterKeyword.filter_id.in_(ids))
                                        .order_by(FilterKeyword.id)):
            keywords[kw.filter_id].append(kw)
        for item in await session.scalars(select(FilterStatus).where(FilterStatus.filter_id.in_(ids))
                                          .order_by(FilterStatus.id)):
            statuses[item.filter_id].append(item)
    return [filter_to_api(f, keywords[f.id], statuses[f.id]) for f in filters]


async def changed(session: AsyncSession, owner_id: int, filter_id: int) -> None:
    """Tell the owner's open streams that their filters changed (sent if the transaction commits)."""
    await queue_event(session, Event("filters_changed", filter_id, audience=(owner_id,)))


def get_contexts(params: Params, required: bool) -> list[str] | None:
    if "context" not in params:
        if required:
            raise unprocessable("context is missing")
        return None
    contexts = params.get_list("context", max_items=len(CONTEXTS) * 2)
    unknown = [c for c in contexts if c not in CONTEXTS]
    if unknown:
        raise unprocessable(f"context must be among {', '.join(CONTEXTS)}")
    if not contexts:
        raise unprocessable("context can't be blank")
    return list(dict.fromkeys(contexts))


def get_expiry(params: Params) -> tuple[bool, dt.datetime | None]:
    """(whether `expires_in` was given, the expiry it means); empty or null means never."""
    if "expires_in" not in params:
        return False, None
    raw = params.raw("expires_in")
    if raw is None or raw == "":
        return True, None
    seconds = params.get_int("expires_in", minimum=1, maximum=MAX_EXPIRES_IN)
    assert seconds is not None
    return True, utcnow() + dt.timedelta(seconds=seconds)


def get_title(params: Params, name: str, required: bool, max_len: int = TITLE_MAX) -> str | None:
    value = params.get_str(name, required=required, max_len=max_len)
    if value is not None and not value.strip():
        raise unprocessable(f"{name} can't be blank")
    return value.strip() if value is not None else None


async def _count_filters(session: AsyncSession, owner_id: int) -> None:
    count = await session.scalar(select(func.count()).select_from(Filter).where(Filter.owner_id == owner_id))
    if (count or 0) >= MAX_FILTERS:
        raise unprocessable(f"you may have at most {MAX_FILTERS} filters")


async def _count_keywords(session: AsyncSession, filter_id: int, adding: int) -> None:
    count = await session.scalar(select(func.count()).select_from(FilterKeyword)
                                 .where(FilterKeyword.filter_id == filter_id))
    if (count or 0) + adding > MAX_KEYWORDS:
        raise unprocessable(f"a filter has at most {MAX_KEYWORDS} keywords")


# -- v2 filters --------------------------------------------------------------------------------------

def _keyword_entries(params: Params) -> list[Params]:
    """`keywords_attributes` as a list of Params (JSON array, `[0][keyword]` or `[][keyword]` forms)."""
    raw = params.get_dict("keywords_attributes") or {}
    if len(raw) > MAX_KEYWORDS:
        raise unprocessable(f"a filter has at most {MAX_KEYWORDS} keywords")
    entries = []
    for key in sorted(raw, key=lambda k: (len(k), k)):
        if not isinstance(raw[key], dict):
            raise unprocessable("keywords_attributes must be a list of objects")
        entries.append(Params(raw[key]))
    return entries


async def get_filters_v2(request: web.Request) -> web.Response:
    """GET /api/v2/filters: the caller's filters, expired ones included (as Mastodon)."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        filters = list(await session.scalars(select(Filter).where(Filter.owner_id == me).order_by(Filter.id)))
        return json_response(await render_filters(session, filters))


async def get_filter_v2(request: web.Request) -> web.Response:
    me = require_viewer(request)
    filter_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        return json_response((await render_filters(session, [flt]))[0])


async def create_filter_v2(request: web.Request) -> web.Response:
    """POST /api/v2/filters: title, context[], filter_action, expires_in, keywords_attributes[]."""
    me = require_viewer(request)
    params = await read_params(request)
    title = get_title(params, "title", required=True)
    contexts = get_contexts(params, required=True)
    action = params.get_str("filter_action", "warn", choices=ACTIONS)
    _, expires_at = get_expiry(params)
    new_keywords = [(get_title(e, "keyword", True, KEYWORD_MAX), bool(e.get_bool("whole_word", True)))
                    for e in _keyword_entries(params)]
    async with write_session(request.app[SESSIONMAKER]) as session:
        await _count_filters(session, me)
        flt = Filter(owner_id=me, title=title, contexts=contexts, action=action, expires_at=expires_at)
        session.add(flt)
        await session.flush()
        for keyword, whole_word in new_keywords:
            session.add(FilterKeyword(filter_id=flt.id, keyword=keyword, whole_word=whole_word))
        await session.flush()
        await changed(session, me, flt.id)
        return json_response((await render_filters(session, [flt]))[0])


async def _apply_keyword_changes(session: AsyncSession, flt: Filter, entries: list[Params]) -> None:
    """`keywords_attributes` on update: entries with an id change or (`_destroy`) remove that keyword."""
    existing = {k.id: k for k in await session.scalars(
        select(FilterKeyword).where(FilterKeyword.filter_id == flt.id))}
    added = 0
    for entry in entries:
        keyword_id = entry.get_id("id")
        if keyword_id is None:
            keyword = get_title(entry, "keyword", True, KEYWORD_MAX)
            session.add(FilterKeyword(filter_id=flt.id, keyword=keyword,
                                      whole_word=bool(entry.get_bool("whole_word", True))))
            added += 1
            continue
        row = existing.get(keyword_id)
        if row is None:
            raise not_found()
        if entry.get_bool("_destroy", False):
            await session.delete(row)
            added -= 1
            continue
        keyword = get_title(entry, "keyword", False, KEYWORD_MAX)
        if keyword is not None:
            row.keyword = keyword
        whole_word = entry.get_bool("whole_word", None)
        if whole_word is not None:
            row.whole_word = whole_word
    if len(existing) + added > MAX_KEYWORDS:
        raise unprocessable(f"a filter has at most {MAX_KEYWORDS} keywords")


async def update_filter_v2(request: web.Request) -> web.Response:
    """PUT /api/v2/filters/:id: any of title, context[], filter_action, expires_in, keywords_attributes[]."""
    me = require_viewer(request)
    filter_id = path_id(request)
    params = await read_params(request)
    title = get_title(params, "title", required=False)
    contexts = get_contexts(params, required=False)
    action = params.get_str("filter_action", choices=ACTIONS)
    expiry_given, expires_at = get_expiry(params)
    entries = _keyword_entries(params)
    async with write_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        if title is not None:
            flt.title = title
        if contexts is not None:
            flt.contexts = contexts
        if action is not None:
            flt.action = action
        if expiry_given:
            flt.expires_at = expires_at
        await _apply_keyword_changes(session, flt, entries)
        await session.flush()
        await changed(session, me, flt.id)
        return json_response((await render_filters(session, [flt]))[0])


async def delete_filter_v2(request: web.Request) -> web.Response:
    me = require_viewer(request)
    filter_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        await _delete_filter(session, flt)
        await changed(session, me, filter_id)
    return json_response({})


async def _delete_filter(session: AsyncSession, flt: Filter) -> None:
    await session.execute(delete(FilterKeyword).where(FilterKeyword.filter_id == flt.id))
    await session.execute(delete(FilterStatus).where(FilterStatus.filter_id == flt.id))
    await session.delete(flt)


# -- v2 keywords -------------------------------------------------------------------------------------

async def get_filter_keywords(request: web.Request) -> web.Response:
    me = require_viewer(request)
    filter_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        rows = await session.scalars(select(FilterKeyword).where(FilterKeyword.filter_id == flt.id)
                                     .order_by(FilterKeyword.id))
        return json_response([keyword_to_api(k) for k in rows])


async def create_filter_keyword(request: web.Request) -> web.Response:
    """POST /api/v2/filters/:id/keywords: keyword, whole_word (default true)."""
    me = require_viewer(request)
    filter_id = path_id(request)
    params = await read_params(request)
    keyword = get_title(params, "keyword", True, KEYWORD_MAX)
    whole_word = bool(params.get_bool("whole_word", True))
    async with write_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        await _count_keywords(session, flt.id, 1)
        row = FilterKeyword(filter_id=flt.id, keyword=keyword, whole_word=whole_word)
        session.add(row)
        await session.flush()
        await changed(session, me, flt.id)
        return json_response(keyword_to_api(row))


async def get_filter_keyword(request: web.Request) -> web.Response:
    me = require_viewer(request)
    keyword_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        row, _ = await get_own_keyword(session, me, keyword_id)
        return json_response(keyword_to_api(row))


async def update_filter_keyword(request: web.Request) -> web.Response:
    me = require_viewer(request)
    keyword_id = path_id(request)
    params = await read_params(request)
    keyword = get_title(params, "keyword", False, KEYWORD_MAX)
    whole_word = params.get_bool("whole_word", None)
    async with write_session(request.app[SESSIONMAKER]) as session:
        row, flt = await get_own_keyword(session, me, keyword_id)
        if keyword is not None:
            row.keyword = keyword
        if whole_word is not None:
            row.whole_word = whole_word
        await changed(session, me, flt.id)
        return json_response(keyword_to_api(row))


async def delete_filter_keyword(request: web.Request) -> web.Response:
    me = require_viewer(request)
    keyword_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        row, flt = await get_own_keyword(session, me, keyword_id)
        await session.delete(row)
        await changed(session, me, flt.id)
    return json_response({})


# -- v2 statuses -------------------------------------------------------------------------------------

async def _get_own_filter_status(session: AsyncSession, owner_id: int, item_id: int) -> FilterStatus:
    item = await session.scalar(select(FilterStatus).join(Filter, Filter.id == FilterStatus.filter_id)
                                .where(FilterStatus.id == item_id, Filter.owner_id == owner_id))
    if item is None:
        raise not_found()
    return item


async def get_filter_statuses(request: web.Request) -> web.Response:
    me = require_viewer(request)
    filter_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        rows = await session.scalars(select(FilterStatus).where(FilterStatus.filter_id == flt.id)
                                     .order_by(FilterStatus.id))
        return json_response([filter_status_to_api(s) for s in rows])


async def create_filter_status(request: web.Request) -> web.Response:
    """POST /api/v2/filters/:id/statuses: status_id of a status the caller may see."""
    me = require_viewer(request)
    filter_id = path_id(request)
    params = await read_params(request)
    status_id = params.get_str("status_id", required=True)
    post_id = parse_id(status_id or "", "status_id")
    async with write_session(request.app[SESSIONMAKER]) as session:
        flt = await get_own_filter(session, me, filter_id)
        if not await can_see(session, await load_viewer(session, me), post_id):
            raise not_found()
        present = await session.scalar(select(FilterStatus.id).where(
            FilterStatus.filter_id == flt.id, FilterStatus.post_id == post_id))
        if present is not None:
            raise unprocessable("this status is already in the filter")
        item = FilterStatus(filter_id=flt.id, post_id=post_id)
        session.add(item)
        await session.flush()
        await changed(session, me, flt.id)
        return json_response(filter_status_to_api(item))


async def get_filter_status(request: web.Request) -> web.Response:
    me = require_viewer(request)
    item_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        return json_response(filter_status_to_api(await _get_own_filter_status(session, me, item_id)))


async def delete_filter_status(request: web.Request) -> web.Response:
    me = require_viewer(request)
    item_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        item = await _get_own_filter_status(session, me, item_id)
        await session.delete(item)
        await changed(session, me, item.filter_id)
    return json_response({})


# -- v1 filters (one keyword each) -------------------------------------------------------------------

def filter_v1_to_api(keyword: FilterKeyword, flt: Filter) -> dict[str, Any]:
    return {"id": str(keyword.id), "phrase": keyword.keyword, "context": list(flt.contexts or []),
            "whole_word": bool(keyword.whole_word), "expires_at": iso(flt.expires_at),
            "irreversible": flt.action == "hide"}


async def get_filters_v1(request: web.Request) -> web.Response:
    """GET /api/v1/filters: every keyword of the caller's filters, as a v1 filter."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        rows = (await session.execute(
            select(FilterKeyword, Filter).join(Filter, Filter.id == FilterKeyword.filter_id)
            .where(Filter.owner_id == me).order_by(FilterKeyword.id))).all()
    return json_response([filter_v1_to_api(kw, flt) for kw, flt in rows])


async def get_filter_v1(request: web.Request) -> web.Response:
    me = require_viewer(request)
    keyword_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        keyword, flt = await get_own_keyword(session, me, keyword_id)
    return json_response(filter_v1_to_api(keyword, flt))


async def create_filter_v1(request: web.Request) -> web.Response:
    """POST /api/v1/filters: phrase, context[], irreversible, whole_word, expires_in."""
    me = require_viewer(request)
    params = await read_params(request)
    phrase = get_title(params, "phrase", True, KEYWORD_MAX)
    contexts = get_contexts(params, required=True)
    hide = bool(params.get_bool("irreversible", False))
    whole_word = bool(params.get_bool("whole_word", True))
    _, expires_at = get_expiry(params)
    async with write_session(request.app[SESSIONMAKER]) as session:
        await _count_filters(session, me)
        flt = Filter(owner_id=me, title=phrase, contexts=contexts, action="hide" if hide else "warn",
                     expires_at=expires_at)
        session.add(flt)
        await session.flush()
        keyword = FilterKeyword(filter_id=flt.id, keyword=phrase, whole_word=whole_word)
        session.add(keyword)
        await session.flush()
        await changed(session, me, flt.id)
        return json_response(filter_v1_to_api(keyword, flt))


async def update_filter_v1(request: web.Request) -> web.Response:
    """PUT /api/v1/filters/:id: the keyword, and the filter's settings when it has no other keyword."""
    me = require_viewer(request)
    keyword_id = path_id(request)
    params = await read_params(request)
    phrase = get_title(params, "phrase", False, KEYWORD_MAX)
    whole_word = params.get_bool("whole_word", None)
    contexts = get_contexts(params, required=False)
    hide = params.get_bool("irreversible", None)
    expiry_given, expires_at = get_expiry(params)
    async with write_session(request.app[SESSIONMAKER]) as session:
        keyword, flt = await get_own_keyword(session, me, keyword_id)
        filter_change = contexts is not None or hide is not None or expiry_given
        if filter_change:
            siblings = await session.scalar(select(func.count()).select_from(FilterKeyword)
                                            .where(FilterKeyword.filter_id == flt.id))
            if (siblings or 0) > 1:
                raise unprocessable("cannot update a filter with several keywords through the v1 API")
        if phrase is not None:
            keyword.keyword = phrase
        if whole_word is not None:
            keyword.whole_word = whole_word
        if contexts is not None:
            flt.contexts = contexts
        if hide is not None:
            flt.action = "hide" if hide else "warn"
        if expiry_given:
            flt.expires_at = expires_at
        await changed(session, me, flt.id)
        return json_response(filter_v1_to_api(keyword, flt))


async def delete_filter_v1(request: web.Request) -> web.Response:
    """DELETE /api/v1/filters/:id: the keyword; its filter too when nothing else is left in it."""
    me = require_viewer(request)
    keyword_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        keyword, flt = await get_own_keyword(session, me, keyword_id)
        await session.delete(keyword)
        await session.flush()
        others = await session.scalar(select(func.count()).select_from(FilterKeyword)
                                      .where(FilterKeyword.filter_id == flt.id))
        statuses = await session.scalar(select(func.count()).select_from(FilterStatus)
                                        .where(FilterStatus.filter_id == flt.id))
        if not others and not statuses:
            await _delete_filter(session, flt)
        await changed(session, me, flt.id)
    return json_response({})
