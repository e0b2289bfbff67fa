"""Lists (/api/v1/lists), their members, the lists an account is in, and list timelines.

A list belongs to one resident: anyone else's list answers 404. Members must be accounts the owner
follows (422 otherwise, as Mastodon). The list timeline shows the members' posts the owner may see,
newest first, with replies as the list's `replies_policy` says, and the owner's `home` filters applied.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.audience import load_viewer, muted_clause, visible_clause
from voisinage.models.db import read_session, write_session
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.lists import REPLIES_POLICIES, ListMember, UserList
from voisinage.models.post import Post

from ..auth import require_viewer
from ..errors import json_response, not_found, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from ..services.filtering import apply_filters
from .params import Params, get_page, link_header, parse_id, path_id, read_params
from .to_api import account_to_api, render_statuses, status_keys

TITLE_MAX = 100
MAX_LISTS = 50
MAX_MEMBERS_PER_CALL = 100


def list_to_api(item: UserList) -> dict[str, Any]:
    return {"id": str(item.id), "title": item.title, "replies_policy": item.replies_policy,
            "exclusive": bool(item.exclusive)}


async def get_own_list(session: AsyncSession, owner_id: int, list_id: int) -> UserList:
    """The owner's list, or 404 (someone else's list is not found either)."""
    item = await session.scalar(select(UserList).where(UserList.id == list_id, UserList.owner_id == owner_id))
    if item is None:
        raise not_found()
    return item


def _title(params: Params, required: bool) -> str | None:
    title = params.get_str("title", required=required, max_len=TITLE_MAX)
    if title is not None and not title.strip():
        raise unprocessable("title can't be blank")
    return title.strip() if title is not None else None


async def get_lists(request: web.Request) -> web.Response:
    """GET /api/v1/lists: the caller's lists, by title."""
    me = require_viewer(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        rows = await session.scalars(select(UserList).where(UserList.owner_id == me)
                                     .order_by(func.lower(UserList.title), UserList.id))
        return json_response([list_to_api(item) for item in rows])


async def get_list(request: web.Request) -> web.Response:
    me = require_viewer(request)
    list_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        return json_response(list_to_api(await get_own_list(session, me, list_id)))


async def create_list(request: web.Request) -> web.Response:
    """POST /api/v1/lists: title (required), replies_policy (default `list`), exclusive."""
    me = require_viewer(request)
    params = await read_params(request)
    title = _title(params, required=True)
    policy = params.get_str("replies_policy", "list", choices=REPLIES_POLICIES)
    exclusive = bool(params.get_bool("exclusive", False))
    async with write_session(request.app[SESSIONMAKER]) as session:
        count = await session.scalar(select(func.count()).select_from(UserList).where(UserList.owner_id == me))
        if (count or 0) >= MAX_LISTS:
            raise unprocessable(f"you may have at most {MAX_LISTS} lists")
        item = UserList(owner_id=me, title=title, replies_policy=policy, exclusive=exclusive)
        session.add(item)
        await session.flush()
        return json_response(list_to_api(item))


async def update_list(request: web.Request) -> web.Response:
    """PUT /api/v1/lists/:id: any of title, replies_policy, exclusive."""
    me = require_viewer(request)
    list_id = path_id(request)
    params = await read_params(request)
    title = _title(params, required=False)
    policy = params.get_str("replies_policy", choices=REPLIES_POLICIES)
    exclusive = params.get_bool("exclusive", None)
    async with write_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        if title is not None:
            item.title = title
        if policy is not None:
            item.replies_policy = policy
        if exclusive is not None:
            item.exclusive = exclusive
        return json_response(list_to_api(item))


async def delete_list(request: web.Request) -> web.Response:
    me = require_viewer(request)
    list_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        await session.execute(delete(ListMember).where(ListMember.list_id == item.id))
        await session.delete(item)
    return json_response({})


# -- members -----------------------------------------------------------------------------------------

def _account_ids(params: Params) -> list[int]:
    values = params.get_list("account_ids", max_items=MAX_MEMBERS_PER_CALL)
    if not values:
        raise unprocessable("account_ids is missing")
    return list(dict.fromkeys(parse_id(v, "account_ids") for v in values))


async def get_list_accounts(request: web.Request) -> web.Response:
    """GET /api/v1/lists/:id/accounts: the members, paged by account id (limit=0: all of them)."""
    me = require_viewer(request)
    list_id = path_id(request)
    params = await read_params(request)
    unlimited = params.get_str("limit") == "0"
    page = get_page(params, default=40, maximum=80)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        query = select(Actor).join(ListMember, ListMember.actor_id == Actor.id).where(ListMember.list_id == item.id)
        if unlimited:
            actors, more = list(await session.scalars(query.order_by(Actor.id.desc()))), False
        else:
            actors, more = page.trim(list(await session.scalars(page.apply(query, Actor.id))))
    link = None if unlimited else link_header(request, base_url, page, [a.id for a in actors], more)
    return json_response([account_to_api(a, base_url) for a in actors], headers={"Link": link} if link else None)


async def add_list_accounts(request: web.Request) -> web.Response:
    """POST /api/v1/lists/:id/accounts: account_ids[] of accounts the owner follows."""
    me = require_viewer(request)
    list_id = path_id(request)
    ids = _account_ids(await read_params(request))
    async with write_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        known = set(await session.scalars(select(Actor.id).where(Actor.id.in_(ids))))
        if len(known) != len(ids):
            raise not_found()
        followed = set(await session.scalars(select(Follow.target_id).where(
            Follow.follower_id == me, Follow.state == ACCEPTED, Follow.target_id.in_(ids))))
        if followed != known:
            raise unprocessable("you can only add accounts you follow to a list")
        present = set(await session.scalars(select(ListMember.actor_id).where(
            ListMember.list_id == item.id, ListMember.actor_id.in_(ids))))
        for actor_id in ids:
            if actor_id not in present:
                session.add(ListMember(list_id=item.id, actor_id=actor_id))
    return json_response({})


async def remove_list_accounts(request: web.Request) -> web.Response:
    """DELETE /api/v1/lists/:id/accounts: account_ids[] to take out of the list."""
    me = require_viewer(request)
    list_id = path_id(request)
    ids = _account_ids(await read_params(request))
    async with write_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        await session.execute(delete(ListMember).where(ListMember.list_id == item.id, ListMember.actor_id.in_(ids)))
    return json_response({})


async def get_account_lists(request: web.Request) -> web.Response:
    """GET /api/v1/accounts/:id/lists: the caller's lists that contain this account."""
    me = require_viewer(request)
    account_id = path_id(request)
    async with read_session(request.app[SESSIONMAKER]) as session:
        actor = await session.get(Actor, account_id)
        if actor is None or actor.suspended_at is not None:
            raise not_found()
        rows = await session.scalars(
            select(UserList).join(ListMember, ListMember.list_id == UserList.id)
            .where(UserList.owner_id == me, ListMember.actor_id == account_id)
            .order_by(func.lower(UserList.title), UserList.id))
        return json_response([list_to_api(item) for item in rows])


# -- the list timeline -------------------------------------------------------------------------------

def replies_clause(item: UserList, owner_id: int) -> Any:
    """Which posts of the members the list shows, as its replies policy says (self-replies always)."""
    members = select(ListMember.actor_id).where(ListMember.list_id == item.id)
    allowed = [Post.in_reply_to_account_id.is_(None), Post.in_reply_to_account_id == Post.author_id,
               Post.in_reply_to_account_id == owner_id]
    if item.replies_policy == "followed":
        allowed.append(Post.in_reply_to_account_id.in_(select(Follow.target_id).where(
            Follow.follower_id == owner_id, Follow.state == ACCEPTED)))
    elif item.replies_policy == "list":
        allowed.append(Post.in_reply_to_account_id.in_(members))
    return or_(*allowed)


async def get_list_timeline(request: web.Request) -> web.Response:
    """GET /api/v1/timelines/list/:id: the members' posts (and boosts) the owner may see, newest first."""
    me = require_viewer(request)
    list_id = path_id(request)
    page = get_page(await read_params(request))
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        item = await get_own_list(session, me, list_id)
        viewer = await load_viewer(session, me)
        members = select(ListMember.actor_id).where(ListMember.list_id == item.id)
        query = status_keys().where(Post.author_id.in_(members), visible_clause(viewer), ~muted_clause(me),
                                    replies_clause(item, me))
        posts, more = page.trim(list(await session.execute(page.apply(query, Post.id))))
        data = await render_statuses(session, posts, viewer, base_url)
        data = await apply_filters(session, me, data, "home")
    link = link_header(request, base_url, page, [p.id for p in posts], more)
    return json_response(data, headers={"Link": link} if link else None)
