"""/api/v1/conversations: the viewer's direct-message threads, the latest first.

One entry per thread the viewer takes part in (`models.conversation`), with the other participants,
the latest status the viewer may see and whether it is unread. Paged by the latest status's id, with
a `Link` header.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select, update

from voisinage.models.audience import load_viewer, visible_clause
from voisinage.models.conversation import Conversation
from voisinage.models.db import read_session, write_session
from voisinage.models.post import Post

from ..auth import require_viewer
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER, SETTINGS
from .params import get_page, link_header, path_id, read_params
from .to_api import StatusBatch, load_accounts


async def get_conversations(request: web.Request) -> web.Response:
    """GET /api/v1/conversations."""
    me = require_viewer(request)
    page = get_page(await read_params(request), default=20, maximum=40)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        query = (select(Conversation, Post).join(Post, Post.id == Conversation.last_post_id)
                 .where(Conversation.actor_id == me, Conversation.hidden.is_(False), visible_clause(viewer)))
        rows, more = page.trim(list((await session.execute(page.apply(query, Conversation.last_post_id))).all()))
        batch = StatusBatch(base_url, viewer)
        await batch.load(session, [row[1] for row in rows])
        accounts = await load_accounts(session, {i for row in rows for i in row[0].participant_ids}, base_url)
        data = [_conversation_to_api(row[0], batch.render(row[1]), accounts) for row in rows]
    link = link_header(request, base_url, page, [row[1].id for row in rows], more)
    return json_response(data, headers={"Link": link} if link else None)


def _conversation_to_api(conversation: Conversation, status: dict[str, Any] | None,
                         accounts: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "unread": bool(conversation.unread),
        "accounts": [accounts[i] for i in conversation.participant_ids if i in accounts],
        "last_status": status,
    }


async def _own_conversation(request: web.Request, **values: Any) -> int:
    me = require_viewer(request)
    conversation_id = path_id(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        result = await session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.actor_id == me).values(**values))
        if not result.rowcount:
            raise ApiError(404, "Record not found")
    return conversation_id


async def read_conversation(request: web.Request) -> web.Response:
    """POST /api/v1/conversations/:id/read: answers the conversation, read."""
    conversation_id = await _own_conversation(request, unread=False)
    me = require_viewer(request)
    base_url = request.app[SETTINGS].base_url
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        conversation = await session.get(Conversation, conversation_id)
        post = await session.scalar(select(Post).where(Post.id == conversation.last_post_id,
                                                       visible_clause(viewer))) if conversation.last_post_id else None
        batch = StatusBatch(base_url, viewer)
        await batch.load(session, [post] if post else [])
        accounts = await load_accounts(session, conversation.participant_ids, base_url)
        data = _conversation_to_api(conversation, batch.render(post) if post else None, accounts)
    return json_response(data)


async def delete_conversation(request: web.Request) -> web.Response:
    """DELETE /api/v1/conversations/:id: hides it for the viewer (until a new message arrives)."""
    await _own_conversation(request, hidden=True)
    return json_response({})
