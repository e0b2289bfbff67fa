"""Middlewares: Mastodon-shaped JSON errors, CORS for browser apps, client address behind proxies."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from aiohttp import web

from voisinage.models.oauth import token_digest

from .errors import ApiError
from .keys import CLOCK, SESSIONMAKER, SETTINGS

log = logging.getLogger("voisinage.server")

JSON_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke", "/.well-known/", "/nodeinfo/")
CORS_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke", "/.well-known/", "/nodeinfo/")
CORS_EXPOSE = "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id, Idempotency-Key"


def _wants_json(path: str) -> bool:
    return path.startswith(JSON_PREFIXES)


def _cors(request: web.Request) -> bool:
    return request.path.startswith(CORS_PREFIXES)


def _add_cors(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE


@web.middleware
async def errors_and_cors(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "OPTIONS" and _cors(request):
        response = web.Response(status=200)
        _add_cors(request, response)
        response.headers["Access-Control-Allow-Methods"] = "POST, PUT, DELETE, GET, PATCH, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "Authorization, Content-Type, Idempotency-Key")
        response.headers["Access-Control-Max-Age"] = "1728000"
        return response
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        if not _wants_json(request.path) or exc.status < 400:
            raise
        message = {404: "Record not found", 405: "Method not allowed", 413: "Request entity too large"}.get(
            exc.status, exc.reason)
        kept = {k: v for k, v in exc.headers.items()
                if k.lower() in ("allow", "retry-after") or k.lower().startswith("x-ratelimit-")}
        response = ApiError(exc.status, message, headers=kept).response()
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _wants_json(request.path):
            response = web.Response(status=500, text="Something went wrong on our side.")
        else:
            response = ApiError(500, "Internal server error").response()
    if _cors(request):
        _add_cors(request, response)
    return response


def _in_networks(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(request: web.Request) -> str:
    """The peer address; behind a trusted proxy, the right-most untrusted X-Forwarded-For entry."""
    peer = request.remote or "unknown"
    trusted = request.app[SETTINGS].server.trusted_proxies
    if not trusted or not _in_networks(peer, trusted):
        return peer
    forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
    for hop in reversed(forwarded):
        if not _in_networks(hop, trusted):
            return hop
    return forwarded[0] if forwarded else peer


def request_scheme(request: web.Request) -> str:
    peer = request.remote or ""
    trusted = request.app[SETTINGS].server.trusted_proxies
    if trusted and _in_networks(peer, trusted):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        if proto in ("http", "https"):
            return proto
    return request.scheme


API_LIMITER = web.AppKey("api_limiter", object)  # services.ratelimit.LocalCounters, or None on PostgreSQL


@web.middleware
async def api_rate_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """`ratelimit.api_per_5min` per token and per client IP on /api/ (Mastodon: 300 / 5 min)."""
    settings = request.app[SETTINGS]
    if not request.path.startswith("/api/") or settings.ratelimit.api_per_5min <= 0 or request.method == "OPTIONS":
        return await handler(request)
    from .auth import bearer_token
    from .services.ratelimit import take_api, too_many_requests

    subjects = [f"ip:{client_ip(request)}"]
    token = bearer_token(request)
    if token:
        subjects.append(f"token:{token_digest(token)}")
    state = await take_api(request.app[SESSIONMAKER], request.app.get(API_LIMITER), settings, subjects,
                           request.app[CLOCK]())
    if not state.allowed:
        raise too_many_requests(state)
    try:
        response = await handler(request)
    except (ApiError, web.HTTPException) as exc:  # errors count too, and say so (as Mastodon's do)
        for name, value in state.headers().items():
            exc.headers.setdefault(name, value)  # a tighter limit's own headers (household codes) win
        raise
    response.headers.update(state.headers())
    return response
