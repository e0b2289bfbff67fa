"""WebFinger (RFC 7033) and host-meta: how peers turn `@name@domain` into an actor URL, both ways.

Served: residents, villages and the instance actor, for our domain exactly as configured (port
included). Fetched: a partner's JRD over https; over http only when private addresses are allowed
(tests and loopback setups), as a fallback after https fails to connect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.uris import instance_actor_uri

from .context import FEDERATION, FederationContext
from .local_keys import INSTANCE_ACTOR_USERNAME
from .transport import JSON_ACCEPT, FetchError, NetworkError
from .vocab import AP_RESPONSE_TYPE, as_list

JRD_TYPE = "application/jrd+json"
XRD_TYPE = "application/xrd+xml"


class WebFingerError(FetchError):
    """The peer's WebFinger answer names no ActivityPub actor."""


# -- serving ----------------------------------------------------------------------------------


def _split_acct(resource: str, domain: str) -> str | None:
    """The username of `acct:name@domain` when domain is ours (exact, port included), else None."""
    text = resource.removeprefix("acct:")
    text = text.removeprefix("@")
    name, sep, host = text.rpartition("@")
    if not sep or not name or host.lower() != domain:
        return None
    return name


def _name_from_url(resource: str, ctx: FederationContext) -> str | None:
    """Mastodon also answers for an actor URL: `https://domain/users/name` or `/villages/slug`."""
    if not ctx.is_local_url(resource):
        return None
    path = urlsplit(resource).path.rstrip("/")
    if path == "/actor":
        return INSTANCE_ACTOR_USERNAME
    for prefix in ("/users/", "/villages/"):
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            return path[len(prefix):] or None
    return None


async def _local_actor_uri(session: AsyncSession, ctx: FederationContext, name: str) -> str | None:
    if name.lower() == INSTANCE_ACTOR_USERNAME:
        return instance_actor_uri(ctx.base_url)
    actor = await session.scalar(select(Actor).where(
        func.lower(Actor.username) == name.lower(), Actor.domain == "", Actor.suspended_at.is_(None)))
    return actor.uri if actor is not None else None


def jrd_for(username: str, domain: str, uri: str) -> dict[str, Any]:
    """The JRD that describes one of our actors."""
    return {
        "subject": f"acct:{username}@{domain}",
        "aliases": [uri],
        "links": [{"rel": "self", "type": AP_RESPONSE_TYPE, "href": uri}],
    }


async def get_webfinger(request: web.Request) -> web.Response:
    """GET /.well-known/webfinger?resource=acct:name@domain"""
    ctx = request.app[FEDERATION]
    resource = request.query.get("resource", "").strip()
    if not resource:
        raise web.HTTPBadRequest(text="resource is required")
    name = _name_from_url(resource, ctx) if resource.startswith(("http://", "https://")) else (
        _split_acct(resource, ctx.domain))
    if name is None:
        raise web.HTTPNotFound()
    async with ctx.sessionmaker() as session:
        uri = await _local_actor_uri(session, ctx, name)
        username = name
        if uri is not None and name.lower() != INSTANCE_ACTOR_USERNAME:
            username = uri.rstrip("/").rsplit("/", 1)[-1]  # the stored spelling
    if uri is None:
        raise web.HTTPNotFound()
    return web.json_response(jrd_for(username, ctx.domain, uri), content_type=JRD_TYPE,
                             headers={"Cache-Control": "max-age=259200, public"})


async def get_host_meta(request: web.Request) -> web.Response:
    """GET /.well-known/host-meta: the XRD pointing at our WebFinger template."""
    ctx = request.app[FEDERATION]
    template = escape(f"{ctx.base_url}/.well-known/webfinger?resource={{uri}}", {'"': "&quot;"})
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
            f'  <Link rel="lrdd" template="{template}"/>\n'
            '</XRD>\n')
    return web.Response(text=body, content_type=XRD_TYPE)


# -- fetching ---------------------------------------------------------------------------------


def actor_uri_from_jrd(jrd: dict[str, Any]) -> str:
    """The `self` link of type activity+json (or ld+json with the AS profile). Raises WebFingerError."""
    for link in as_list(jrd.get("links")):
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        kind, href = link.get("type"), link.get("href")
        if not isinstance(href, str) or not href.startswith(("https://", "http://")):
            continue
        if kind == AP_RESPONSE_TYPE or (isinstance(kind, str) and kind.startswith("application/ld+json")):
            return href
    raise WebFingerError("WebFinger answer has no ActivityPub self link")


def webfinger_url(scheme: str, name: str, host: str) -> str:
    resource = quote(f"acct:{name}@{host}", safe=":@")
    return f"{scheme}://{host}/.well-known/webfinger?resource={resource}"


async def lookup(ctx: FederationContext, name: str, host: str) -> dict[str, Any]:
    """Fetch the JRD of `name@host`. The caller checks the partner list first. Raises FetchError."""
    try:
        _, jrd = await ctx.transport.get_json(
            webfinger_url("https", name, host), accept=JSON_ACCEPT, allow_json=True, check_id=False)
        return jrd
    except NetworkError:
        if not ctx.allow_private_addresses:
            raise
    # Loopback test setups serve plain http; never tried when private addresses are refused.
    _, jrd = await ctx.transport.get_json(
        webfinger_url("http", name, host), accept=JSON_ACCEPT, allow_json=True, check_id=False)
    return jrd


async def lookup_actor_uri(ctx: FederationContext, name: str, host: str) -> str:
    """The actor URL WebFinger gives for `name@host`. Raises FetchError."""
    return actor_uri_from_jrd(await lookup(ctx, name, host))


def setup_webfinger_routes(app: web.Application) -> None:
    """Add /.well-known/webfinger and /.well-known/host-meta."""
    app.router.add_get("/.well-known/webfinger", get_webfinger)
    app.router.add_get("/.well-known/host-meta", get_host_meta)
