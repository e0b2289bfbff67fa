"""Mastodon's streaming API: a websocket at /api/v1/streaming (and server-sent events per stream).

Events arrive from `models.events` carrying ids; each connection renders them for its own reader, so a
reader only ever receives what `models.audience` lets them see. Streams:
`user` (home timeline + notifications), `user:notification`, `public`, `public:local`, `public:remote`,
`hashtag` and `hashtag:local` (with `tag`), `list` (with `list`), `direct`.
Messages are `{"stream": [...], "event": "update", "payload": "<JSON as a string>"}`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from sqlalchemy import select

from voisinage.models.audience import Viewer, load_viewer, muted_clause, visible_ids
from voisinage.models.categories import canonical
from voisinage.models.events import Event, EventBus, Subscription
from voisinage.models.notification import Notification
from voisinage.models.post import Mention, Post
from voisinage.models.timeline import HomeEntry

from ..auth import AuthInfo, scope_allows
from ..errors import ApiError
from ..keys import EVENT_BUS, SESSIONMAKER, SETTINGS
from .to_api import render_notifications, render_statuses

log = logging.getLogger("voisinage.streaming")

STREAMS = ("user", "user:notification", "public", "public:local", "public:remote", "hashtag",
           "hashtag:local", "list", "direct")
PING_SECONDS = 30.0


@dataclass
class Wanted:
    """The streams one connection subscribed to, as (name, parameter) pairs."""

    streams: set[tuple[str, str]] = field(default_factory=set)

    def add(self, name: str, param: str = "") -> None:
        self.streams.add((name, param))

    def remove(self, name: str, param: str = "") -> None:
        self.streams.discard((name, param))


def _stream_key(name: str, params: dict[str, Any]) -> tuple[str, str]:
    if name not in STREAMS:
        raise ApiError(400, "Unknown stream type")
    if name.startswith("hashtag"):
        tag = str(params.get("tag") or "").lstrip("#").lower()
        if not tag:
            raise ApiError(400, "No tag for stream provided")
        return name, canonical(tag)
    if name == "list":
        value = str(params.get("list") or "")
        if not value.isdigit():
            raise ApiError(400, "No list for stream provided")
        return name, value
    return name, ""


def _labels(key: tuple[str, str]) -> list[str]:
    name, param = key
    return [name, param] if param else [name]


class Connection:
    """One reader's open stream: matches bus events against subscriptions and renders them."""

    def __init__(self, request: web.Request, auth: AuthInfo, viewer: Viewer) -> None:
        self.request = request
        self.auth = auth
        self.viewer = viewer
        self.wanted = Wanted()

    async def messages_for(self, event: Event) -> list[dict[str, Any]]:
        keys = self._matching(event)
        if not keys:
            return []
        if event.kind == "notification":
            return await self._notification(event, keys)
        if event.kind == "delete":
            return [{"stream": _labels(k), "event": "delete", "payload": str(event.object_id)} for k in keys]
        if event.kind == "filters_changed":
            return [{"stream": _labels(k), "event": "filters_changed", "payload": None} for k in keys]
        return await self._status(event, keys)

    def _matching(self, event: Event) -> list[tuple[str, str]]:
        me = self.viewer.actor_id
        out = []
        for key in self.wanted.streams:
            name, param = key
            if event.kind in ("notification", "filters_changed"):
                if name in ("user", "user:notification") and me in event.audience:
                    out.append(key)
            elif name == "user" or (name == "direct" and "direct" in event.streams):
                out.append(key)
            elif name in ("hashtag", "hashtag:local"):
                if f"{name}:{param}" in event.streams:
                    out.append(key)
            elif name == "list":
                if f"list:{param}" in event.streams:
                    out.append(key)
            elif name in event.streams:
                out.append(key)
        return out

    async def _status(self, event: Event, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        settings = self.request.app[SETTINGS]
        async with self.request.app[SESSIONMAKER]() as session:
            if not await visible_ids(session, self.viewer, [event.object_id]):
                return []
            post = await session.get(Post, event.object_id)
            if post is None:
                return []
            muted = await session.scalar(select(Post.id).where(
                Post.id == post.id, muted_clause(self.viewer.actor_id))) is not None
            in_home = None
            keep = []
            for key in keys:
                if muted and key[0] != "direct":  # as in the timelines: a mute hides, a DM still arrives
                    continue
                if key[0] == "user":
                    if in_home is None:
                        in_home = await session.scalar(select(HomeEntry.post_id).where(
                            HomeEntry.owner_id == self.viewer.actor_id, HomeEntry.post_id == post.id)) is not None
                    if not in_home:
                        continue
                if key[0] == "direct":
                    mentioned = await session.scalar(select(Mention.actor_id).where(
                        Mention.post_id == post.id, Mention.actor_id == self.viewer.actor_id))
                    if mentioned is None and post.author_id != self.viewer.actor_id:
                        continue
                keep.append(key)
            if not keep:
                return []
            rendered = (await render_statuses(session, [post], self.viewer, settings.base_url))[0]
        payload = orjson.dumps(rendered).decode()
        kind = "status.update" if event.kind == "status.update" else "update"
        return [{"stream": _labels(k), "event": kind, "payload": payload} for k in keep]

    async def _notification(self, event: Event, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        settings = self.request.app[SETTINGS]
        async with self.request.app[SESSIONMAKER]() as session:
            note = await session.get(Notification, event.object_id)
            if note is None or note.recipient_id != self.viewer.actor_id:
                return []
            rendered = await render_notifications(session, [note], self.viewer, settings.base_url)
        if not rendered:
            return []
        payload = orjson.dumps(rendered[0]).decode()
        return [{"stream": _labels(k), "event": "notification", "payload": payload} for k in keys]


def _check_scope(auth: AuthInfo, name: str) -> None:
    needed = "read:notifications" if name == "user:notification" else "read:statuses"
    if not scope_allows(auth.scopes, needed):
        raise ApiError(403, "This action is outside the authorized scopes")


async def _open(request: web.Request) -> Connection:
    auth: AuthInfo | None = request.get("auth")
    if auth is None or auth.actor_id is None:
        raise ApiError(401, "Error: Missing access token")
    async with request.app[SESSIONMAKER]() as session:
        viewer = await load_viewer(session, auth.actor_id)
    return Connection(request, auth, viewer)


async def get_streaming(request: web.Request) -> web.StreamResponse:
    """The websocket; `?stream=` subscribes at once, then subscribe/unsubscribe messages."""
    conn = await _open(request)
    bus: EventBus = request.app[EVENT_BUS]
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    ws = web.WebSocketResponse(protocols=protocols[:1], heartbeat=PING_SECONDS)
    if "stream" in request.query:
        key = _stream_key(request.query["stream"], dict(request.query))
        _check_scope(conn.auth, key[0])
        conn.wanted.add(*key)
    await ws.prepare(request)
    sub = bus.subscribe()
    pump = asyncio.create_task(_pump(ws, conn, sub))
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await _control(ws, conn, message.data)
            elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        pump.cancel()
        bus.unsubscribe(sub)
    return ws


async def _control(ws: web.WebSocketResponse, conn: Connection, raw: str) -> None:
    try:
        data = orjson.loads(raw)
        kind = data.get("type")
        key = _stream_key(str(data.get("stream", "")), data)
        _check_scope(conn.auth, key[0])
    except (orjson.JSONDecodeError, AttributeError):
        await ws.send_str(orjson.dumps({"error": "Invalid JSON"}).decode())
        return
    except ApiError as exc:
        await ws.send_str(orjson.dumps({"error": exc.message, "status": exc.status}).decode())
        return
    if kind == "subscribe":
        conn.wanted.add(*key)
    elif kind == "unsubscribe":
        conn.wanted.remove(*key)
    else:
        await ws.send_str(orjson.dumps({"error": "Unknown message type", "status": 400}).decode())


async def _pump(ws: web.WebSocketResponse, conn: Connection, sub: Subscription) -> None:
    async for event in sub:
        try:
            for message in await conn.messages_for(event):
                await ws.send_str(orjson.dumps(message).decode())
        except ConnectionResetError:
            return
        except Exception:  # one bad event must not end the reader's stream
            log.exception("streaming event %s failed", event)


async def get_streaming_health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def get_stream_sse(request: web.Request) -> web.StreamResponse:
    """Server-sent events: /api/v1/streaming/{stream}, e.g. /user, /public/local, /hashtag?tag=x."""
    conn = await _open(request)
    name = request.match_info["stream"].replace("/", ":")
    key = _stream_key(name, dict(request.query))
    _check_scope(conn.auth, key[0])
    conn.wanted.add(*key)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    bus: EventBus = request.app[EVENT_BUS]
    sub = bus.subscribe()
    try:
        await response.write(b":)\n\n")
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), PING_SECONDS)
            except TimeoutError:
                await response.write(b":thump\n\n")
                continue
            for message in await conn.messages_for(event):
                data = message["payload"] if message["payload"] is not None else ""
                await response.write(f"event: {message['event']}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        bus.unsubscribe(sub)
    return response
