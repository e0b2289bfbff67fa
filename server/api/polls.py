"""/api/v1/polls/:id and /votes: read a poll of a visible status, vote in it once.

A poll found ended but not yet closed is closed on the spot (`posting.close_expired_polls`), so its
author and voters are notified even before the periodic worker passes. A vote in a partner's poll is
added to the counts its origin announced and sent to the poll's author (`outbox.publish_vote`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.audience import Viewer, load_viewer
from voisinage.models.db import read_session, write_session
from voisinage.models.poll import Poll

from ..auth import require_viewer
from ..errors import ApiError, json_response, unprocessable
from ..keys import SESSIONMAKER, SETTINGS
from ..services import posting
from ..services.federate import poll_voted
from .params import path_id, read_params
from .to_api import StatusBatch


async def _visible_poll(session: AsyncSession, viewer: Viewer, poll_id: int) -> Poll:
    poll = await session.get(Poll, poll_id)
    if poll is None:
        raise ApiError(404, "Record not found")
    await posting.get_visible_post(session, viewer, poll.post_id)  # 404 when the status is not visible
    return poll


async def _rendered(session: AsyncSession, viewer: Viewer, poll: Poll, base_url: str) -> dict[str, Any]:
    batch = StatusBatch(base_url, viewer)
    await batch.load(session, [await posting.get_visible_post(session, viewer, poll.post_id)])
    return batch.render_poll(batch.polls[poll.post_id])


async def _close_if_ended(request: web.Request, poll: Poll) -> None:
    if poll.closed_at is None and posting.poll_expired(poll):
        async with write_session(request.app[SESSIONMAKER]) as session:
            await posting.close_expired_polls(session)


async def get_poll(request: web.Request) -> web.Response:
    """GET /api/v1/polls/:id."""
    me = require_viewer(request)
    poll_id = path_id(request)
    base_url = request.app[SETTINGS].base_url
    async with read_session(request.app[SESSIONMAKER]) as session:
        viewer = await load_viewer(session, me)
        poll = await _visible_poll(session, viewer, poll_id)
    await _close_if_ended(request, poll)
    async with read_session(request.app[SESSIONMAKER]) as session:
        return json_response(await _rendered(session, viewer, await _visible_poll(session, viewer, poll_id),
                                             base_url))


def _choices(raw: list[str]) -> list[int]:
    if not raw:
        raise unprocessable("Validation failed: choices is missing")
    if not all(c.isdigit() and len(c) < 4 for c in raw):
        raise unprocessable("Validation failed: Invalid choice")
    return [int(c) for c in raw]


async def vote(request: web.Request) -> web.Response:
    """POST /api/v1/polls/:id/votes with `choices[]` (option indexes); answers the poll."""
    me = require_viewer(request)
    poll_id = path_id(request)
    choices = _choices((await read_params(request)).get_list("choices", max_items=10))
    base_url = request.app[SETTINGS].base_url
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, me)
        poll = await _visible_poll(session, viewer, poll_id)
    await _close_if_ended(request, poll)
    async with write_session(request.app[SESSIONMAKER]) as session:
        poll = await _visible_poll(session, viewer, poll_id)
        await posting.vote_in_poll(session, me, poll, choices)
        if poll.remote:
            await _vote_remotely(session, poll, me, choices)
        data = await _rendered(session, viewer, poll, base_url)
    return json_response(data)


async def _vote_remotely(session: AsyncSession, poll: Poll, me: int, choices: list[int]) -> None:
    """Count the vote in the origin's figures until it sends new ones, and send it there."""
    poll.count_local_vote(list(dict.fromkeys(choices)))
    await session.flush()
    await poll_voted(session, poll, me)
