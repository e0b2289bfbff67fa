"""Search v2 (GET /api/v2/search): accounts, hashtags and statuses the caller may see.

Accounts are found as `/api/v1/accounts/search` finds them (the same query and accent folding,
imported from `api.accounts`). Hashtags: tags of posts the caller may see, and the category names,
starting with the query. Statuses: every word of the query in the text of a post the caller may see
(what a resident typed for local posts, the content for others), newest first. A remote handle finds
no account until federation exists; that is the true answer, not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.federation.context import FEDERATION
from voisinage.models.audience import Viewer, load_viewer, visible_clause
from voisinage.models.categories import CATEGORIES, fold
from voisinage.models.post import Post, PostTag

from ..auth import require_viewer
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..services import federate
from ..services.filtering import apply_filters
from .accounts import _folder, _like_pattern, _search_query, fold_text
from .params import Params, parse_id, read_params
from .to_api import account_to_api, render_statuses

TYPES = ("accounts", "hashtags", "statuses")
DEFAULT_LIMIT = 20
MAX_LIMIT = 40
MAX_WORDS = 8
MAX_OFFSET = 10_000


def hashtag_to_api(name: str, base_url: str) -> dict[str, Any]:
    return {"name": name, "url": f"{base_url}/tags/{name}", "history": [], "following": False}


async def search_hashtags(session: AsyncSession, viewer: Viewer, q: str, limit: int, offset: int) -> list[str]:
    """Tag names starting with `q` (as written, or accent-folded): the categories, then the tags of posts
    the viewer may see, the exact name first, then the shortest."""
    prefix = fold(q.strip().lstrip("#"))
    if not prefix:
        return []
    categories = sorted(name for name in CATEGORIES if name.startswith(prefix))
    pattern = _like_pattern(prefix)[1:]  # a prefix match: no leading %
    used = await session.scalars(
        select(PostTag.name).join(Post, Post.id == PostTag.post_id)
        .where(or_(PostTag.name.like(pattern, escape="\\"), PostTag.canonical.like(pattern, escape="\\")),
               visible_clause(viewer))
        .group_by(PostTag.name).order_by(func.length(PostTag.name), PostTag.name)
        .limit(offset + limit + len(categories)))
    names = list(dict.fromkeys([*categories, *used]))
    names.sort(key=lambda n: (n != prefix, len(n), n))
    return names[offset:offset + limit]


def _text_clause(words: list[str], fold_column: Callable[[Any], Any]) -> Any:
    """Every word in the post's own text: `source` for local posts, `content` for the others."""
    conditions = []
    for word in words:
        pattern = _like_pattern(fold_text(word))
        conditions.append(fold_column(Post.source).like(pattern, escape="\\") & Post.local.is_(True)
                          | fold_column(Post.content).like(pattern, escape="\\") & Post.local.is_(False))
    return and_(*conditions)


async def search_statuses(session: AsyncSession, viewer: Viewer, q: str, account_id: int | None,
                          limit: int, offset: int) -> list[Post]:
    """Original posts the viewer may see containing every word of `q`, newest first."""
    words = q.split()[:MAX_WORDS]
    if not words:
        return []
    query = select(Post).where(Post.reblog_of_id.is_(None), visible_clause(viewer),
                               _text_clause(words, await _folder(session)))
    if account_id is not None:
        query = query.where(Post.author_id == account_id)
    return list(await session.scalars(query.order_by(Post.id.desc()).limit(limit).offset(offset)))


def _wanted(params: Params) -> tuple[str, ...]:
    kind = params.get_str("type", choices=TYPES)
    return (kind,) if kind else TYPES


async def search_v2(request: web.Request) -> web.Response:
    """GET /api/v2/search?q=&type=&resolve=&limit=&offset=&following=&account_id=."""
    me = require_viewer(request)
    params = await read_params(request)
    q = params.get_str("q", required=True, max_len=200) or ""
    wanted = _wanted(params)
    limit = params.get_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT, clamp=True) or DEFAULT_LIMIT
    offset = params.get_int("offset", 0, minimum=0, maximum=MAX_OFFSET) or 0
    resolve = bool(params.get_bool("resolve", False))
    following = bool(params.get_bool("following", False))
    account_id = params.get_str("account_id")
    author_id = parse_id(account_id, "account_id") if account_id else None
    settings = request.app[SETTINGS]
    result: dict[str, list[Any]] = {"accounts": [], "statuses": [], "hashtags": []}
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        if "accounts" in wanted and q.strip().lstrip("@"):
            found = []
            if resolve and offset == 0 and "@" in q.strip().lstrip("@"):
                remote = await federate.resolve_account(request.app.get(FEDERATION), session, q.strip())
                if remote is not None and remote.suspended_at is None:
                    await session.commit()
                    found.append(remote)
            query = _search_query(me, q, settings.instance.domain, following, await _folder(session))
            if query is not None:
                found += [a for a in await session.scalars(query.limit(limit).offset(offset))
                          if all(a.id != f.id for f in found)]
            result["accounts"] = [account_to_api(a, settings.base_url) for a in found[:limit]]
        if "hashtags" in wanted:
            names = await search_hashtags(session, viewer, q, limit, offset)
            result["hashtags"] = [hashtag_to_api(n, settings.base_url) for n in names]
        if "statuses" in wanted:
            posts = await search_statuses(session, viewer, q, author_id, limit, offset)
            statuses = await render_statuses(session, posts, viewer, settings.base_url)
            result["statuses"] = await apply_filters(session, me, statuses, "public")
    return json_response(result)
