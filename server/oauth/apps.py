"""POST /api/v1/apps (register an OAuth application) and GET /api/v1/apps/verify_credentials.

Apps send the parameters as JSON, as a form, or in the query string (Ice Cubes, IceCubesApp#16);
`redirect_uris` is a string (several URIs separated by spaces or newlines) or, since Mastodon 4.3, an
array. Custom schemes (`icecubesapp://`, `com.tapbots.Ivory.10217:/request_token`,
enable-mastodon-apps#11) and `urn:ietf:wg:oauth:2.0:oob` are accepted; script-carrying schemes are not.
Applications are kept for good: Elk caches its `client_id` per server (gts#3715).
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.db import write_session
from voisinage.models.oauth import Application

from ..api.params import Params, read_params
from ..auth import AuthInfo, parse_scopes
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER

OOB = "urn:ietf:wg:oauth:2.0:oob"
MAX_URIS = 20
MAX_URI_LENGTH = 2000
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
FORBIDDEN_SCHEMES = {"javascript", "data", "vbscript", "file", "about", "blob", "filesystem"}


def split_redirect_uris(text: str) -> list[str]:
    return [part for part in text.split() if part]


def redirect_uri_error(uri: str) -> str | None:
    """Why `uri` cannot be a redirect URI, or None when it can."""
    if uri == OOB:
        return None
    if len(uri) > MAX_URI_LENGTH or any(ord(c) < 33 or c in '<>"\\^`{|}' for c in uri):
        return "must be a valid URI"
    scheme, _, rest = uri.partition(":")
    if not _SCHEME.match(scheme) or not rest:
        return "must be an absolute URI"
    if scheme.lower() in FORBIDDEN_SCHEMES:
        return f"may not use the {scheme.lower()} scheme"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "must be a valid URI"
    if parts.fragment or "#" in uri:
        return "cannot contain a fragment"
    if scheme.lower() in ("http", "https") and not parts.hostname:
        return "must name a host"
    return None


def get_redirect_uris(params: Params) -> list[str]:
    """The registered redirect URIs, validated; 422 when missing or unsafe."""
    value = params.raw("redirect_uris")
    if isinstance(value, str):
        uris = split_redirect_uris(value)
    else:
        uris = [u.strip() for u in params.get_list("redirect_uris", max_items=MAX_URIS) if u.strip()]
    if not uris:
        raise ApiError(422, "Validation failed: Redirect URI can't be blank")
    if len(uris) > MAX_URIS:
        raise ApiError(422, "Validation failed: too many redirect URIs")
    for uri in uris:
        problem = redirect_uri_error(uri)
        if problem:
            raise ApiError(422, f"Validation failed: Redirect URI {problem}")
    return list(dict.fromkeys(uris))


def _website(params: Params) -> str | None:
    website = (params.get_str("website", max_len=512) or "").strip()
    if not website:
        return None
    parts = urlsplit(website)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(422, "Validation failed: Website must be an http or https URL")
    return website


def _scopes(params: Params) -> list[str]:
    try:
        return parse_scopes(params.get_str("scopes"), default="read")
    except ApiError as exc:
        raise ApiError(422, f"Validation failed: {exc.message}") from None


def app_to_api(app: Application, *, with_secret: bool) -> dict[str, Any]:
    """The Application entity (with client id and secret right after registration)."""
    uris = app.redirect_uris.split("\n")
    body: dict[str, Any] = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes.split(),
        "redirect_uri": "\n".join(uris),
        "redirect_uris": uris,
        "vapid_key": "",
    }
    if with_secret:
        body.update(client_id=app.client_id, client_secret=app.client_secret, client_secret_expires_at=0)
    return body


async def create_app(request: web.Request) -> web.StreamResponse:
    """Register an application; every app gets its own client id and secret."""
    params = await read_params(request)
    name = (params.get_str("client_name", required=True, max_len=200) or "").strip()
    if not name:
        raise ApiError(422, "Validation failed: Application name can't be blank")
    app = Application(name=name, website=_website(params), client_id=secrets.token_urlsafe(32),
                      client_secret=secrets.token_urlsafe(32),
                      redirect_uris="\n".join(get_redirect_uris(params)), scopes=" ".join(_scopes(params)))
    async with write_session(request.app[SESSIONMAKER]) as session:
        session.add(app)
        await session.flush()
    return json_response(app_to_api(app, with_secret=True))


async def get_app_by_client_id(session: AsyncSession, client_id: str | None) -> Application | None:
    if not client_id or len(client_id) > 64:
        return None
    return await session.scalar(select(Application).where(Application.client_id == client_id))


async def verify_app(request: web.Request) -> web.StreamResponse:
    """The application the token belongs to (app-only or user token)."""
    auth: AuthInfo = request["auth"]
    async with request.app[SESSIONMAKER]() as session:
        app = await session.get(Application, auth.application_id) if auth.application_id else None
    if app is None:
        raise ApiError(404, "Record not found")
    return json_response(app_to_api(app, with_secret=False))
