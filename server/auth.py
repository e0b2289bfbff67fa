"""Bearer tokens -> who is calling, and the scope each route needs.

Every route of `routes.py` names the scope it needs (None: open to anyone). `guard` wraps the handler:
it resolves the token (a short in-process cache in front of the database), refuses a missing or wrong
token with 401, a token without the scope with 403, an app-only token on a user route with 422, and a
suspended account with 403, before the handler runs.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select

from voisinage.models.actor import Actor
from voisinage.models.db import read_session
from voisinage.models.oauth import Token, token_digest

from .errors import ApiError
from .keys import SESSIONMAKER, TOKEN_CACHE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_CACHE_SECONDS = 10.0

# Mastodon's granular scopes (config/initializers/doorkeeper.rb) and what the legacy `follow` covers.
READ_SCOPES = ("accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists", "mutes",
               "notifications", "search", "statuses")
WRITE_SCOPES = ("accounts", "blocks", "bookmarks", "conversations", "favourites", "filters", "follows",
                "lists", "media", "mutes", "notifications", "reports", "statuses")
ADMIN_SCOPES = ("admin:read", "admin:write", "admin:read:accounts", "admin:write:accounts",
                "admin:read:reports", "admin:write:reports")
FOLLOW_COVERS = {"read:follows", "write:follows", "read:blocks", "write:blocks", "read:mutes", "write:mutes"}
ALL_SCOPES = (("read", "write", "follow", "push", "profile")
              + tuple(f"read:{s}" for s in READ_SCOPES) + tuple(f"write:{s}" for s in WRITE_SCOPES)
              + ADMIN_SCOPES)


def scope_allows(granted: frozenset[str], needed: str) -> bool:
    """`read` covers `read:statuses`, `admin:read` covers `admin:read:accounts`, `follow` its six."""
    if needed in granted:
        return True
    parts = needed.split(":")
    for cut in range(1, len(parts)):
        if ":".join(parts[:cut]) in granted:
            return True
    if needed in FOLLOW_COVERS and "follow" in granted:
        return True
    if needed == "read:accounts" and "profile" in granted:
        return True
    return False


def parse_scopes(text: str | None, default: str = "read") -> list[str]:
    """Space- (or `+`-, or comma-) separated scopes, deduplicated, order kept; unknown ones raise."""
    text = (text or "").replace("+", " ").replace(",", " ").strip() or default
    scopes: list[str] = []
    for scope in text.split():
        if scope not in ALL_SCOPES:
            raise ApiError(400, f"The requested scope is invalid, unknown, or malformed: {scope}",
                           extra={"error_description": f"unknown scope {scope}"})
        if scope not in scopes:
            scopes.append(scope)
    return scopes


@dataclass(frozen=True)
class AuthInfo:
    token_id: int
    actor_id: int | None  # None for an app-only (client_credentials) token
    application_id: int | None
    scopes: frozenset[str]


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    token = request.query.get("access_token")
    if not token and request.headers.get("Upgrade", "").lower() == "websocket":
        # masto.js sends the token as the websocket sub-protocol.
        token = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    return token or None


async def authenticate(request: web.Request) -> AuthInfo | None:
    """The caller's token, or None when there is none; a token that is not valid raises 401."""
    token = bearer_token(request)
    if token is None:
        return None
    digest = token_digest(token)
    cache: dict[str, tuple[float, AuthInfo | None]] = request.app[TOKEN_CACHE]
    now = time.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[0] > now:
        info = hit[1]
    else:
        info = await _load_token(request, digest)
        if len(cache) > 10000:
            cache.clear()
        cache[digest] = (now + TOKEN_CACHE_SECONDS, info)
    if info is None:
        raise ApiError(401, "The access token is invalid")
    return info


async def _load_token(request: web.Request, digest: str) -> AuthInfo | None:
    async with read_session(request.app[SESSIONMAKER]) as session:
        row = (await session.execute(
            select(Token.id, Token.actor_id, Token.application_id, Token.scopes, Actor.suspended_at)
            .outerjoin(Actor, Actor.id == Token.actor_id)
            .where(Token.token_hash == digest, Token.revoked_at.is_(None))
        )).first()
    if row is None or row.suspended_at is not None:
        return None
    return AuthInfo(row.id, row.actor_id, row.application_id, frozenset(row.scopes.split()))


def forget_token(app: web.Application, token: str | None = None) -> None:
    """Drop cached tokens after a revoke or a suspension (all of them when `token` is None)."""
    if token is None:
        app[TOKEN_CACHE].clear()
    else:
        app[TOKEN_CACHE].pop(token_digest(token), None)


def guard(handler: Handler, scope: str | None, user: bool) -> Handler:
    """Wrap a route handler with its token and scope check; `request["auth"]` is set for the handler."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        auth = await authenticate(request)
        if scope is not None:
            if auth is None:
                raise ApiError(401, "The access token is invalid")
            if not scope_allows(auth.scopes, scope):
                raise ApiError(403, "This action is outside the authorized scopes")
            if user and auth.actor_id is None:
                raise ApiError(422, "This method requires an authenticated user")
        request["auth"] = auth
        return await handler(request)

    guarded.required_scope = scope  # type: ignore[attr-defined]
    return guarded


def viewer_id(request: web.Request) -> int | None:
    auth: AuthInfo | None = request.get("auth")
    return auth.actor_id if auth else None


def require_viewer(request: web.Request) -> int:
    actor_id = viewer_id(request)
    if actor_id is None:
        raise ApiError(401, "The access token is invalid")
    return actor_id
