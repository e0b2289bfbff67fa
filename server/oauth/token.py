"""POST /oauth/token, POST /oauth/revoke and the OAuth server metadata.

The token endpoint reads JSON, form or query parameters (Elk sends JSON: elk#133, gts#1331) and takes
the client credentials from HTTP Basic or the body (as Takahē does). Grants: `authorization_code`
(with PKCE S256 when the code carries a challenge), `password` (removed in Mastodon 4.4, but toot's
`login_cli` and Mastodon.py's `log_in` still use it; rate limited like the login page) and
`client_credentials` (an app-only token). There are no refresh tokens: Mastodon's tokens do not expire.
Errors follow RFC 6749: `{"error": "invalid_grant", "error_description": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.oauth import Application, AuthorizationCode, Token, token_digest

from ..api.params import Params, read_params
from ..auth import ALL_SCOPES, forget_token, parse_scopes
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..middleware import client_ip
from ..services import ratelimit
from .apps import get_app_by_client_id
from .authorize import (
    check_credentials,
    consume_code,
    mark_login,
    now_of,
    scopes_within,
)

GRANTS = ["authorization_code", "password", "client_credentials"]
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, error, headers=headers, extra={"error_description": description})


def invalid_grant(description: str) -> ApiError:
    return oauth_error(400, "invalid_grant", description)


def invalid_client() -> ApiError:
    return oauth_error(401, "invalid_client", "Client authentication failed due to unknown client, "
                       "no client authentication included, or unsupported authentication method.",
                       headers={"WWW-Authenticate": 'Basic realm="Voisinage"'})


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def client_credentials_of(request: web.Request, params: Params) -> tuple[str, str | None]:
    """(client_id, client_secret or None), from HTTP Basic or from the parameters."""
    basic = _basic_credentials(request)
    if basic is not None:
        return basic
    return (params.get_str("client_id") or "", params.get_str("client_secret"))


async def authenticate_client(session: AsyncSession, client_id: str, secret: str | None,
                              *, secret_required: bool = True) -> Application:
    """The application these credentials name; 401 invalid_client otherwise."""
    app = await get_app_by_client_id(session, client_id)
    if app is None:
        raise invalid_client()
    if secret is None:
        if secret_required:
            raise invalid_client()
    elif not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
        raise invalid_client()
    return app


async def create_token(session: AsyncSession, app_id: int | None, actor_id: int | None,
                       scopes: list[str]) -> tuple[str, Token]:
    """A new access token (only its digest is stored); returns the token and its row."""
    token = secrets.token_urlsafe(32)
    row = Token(token_hash=token_digest(token), application_id=app_id, actor_id=actor_id,
                scopes=" ".join(scopes), created_at=utcnow())
    session.add(row)
    await session.flush()
    return token, row


def token_to_api(token: str, row: Token) -> dict[str, Any]:
    """Mastodon's Token entity (`created_at` in seconds is needed by some apps: gts#645)."""
    return {"access_token": token, "token_type": "Bearer", "scope": row.scopes,
            "created_at": int(row.created_at.timestamp())}


def _requested_scopes(params: Params, app: Application) -> list[str]:
    try:
        scopes = parse_scopes(params.get_str("scope") or params.get_str("scopes"), default="read")
    except ApiError:
        raise oauth_error(400, "invalid_scope", "The requested scope is invalid, unknown, or malformed.") from None
    if not scopes_within(scopes, app.scopes.split()):
        raise oauth_error(400, "invalid_scope", "The requested scope is outside the application's scopes.")
    return scopes


def pkce_matches(challenge: str, verifier: str) -> bool:
    """S256: BASE64URL(SHA256(verifier)) without padding equals the stored challenge."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(digest, challenge)


async def _grant_code(request: web.Request, params: Params) -> tuple[str, Token]:
    client_id, secret = client_credentials_of(request, params)
    code = params.get_str("code") or ""
    async with write_session(request.app[SESSIONMAKER]) as session:
        row = await session.get(AuthorizationCode, token_digest(code)) if code else None
        # A public client (no secret) may exchange a code only when PKCE protects it.
        app = await authenticate_client(session, client_id, secret,
                                        secret_required=row is None or row.code_challenge is None)
        now = dt.datetime.fromtimestamp(now_of(request), dt.UTC)
        if row is None or row.application_id != app.id or row.used or row.expires_at <= now:
            raise invalid_grant("The authorization code is invalid, expired, already used, "
                                "or was issued to another client.")
        if (params.get_str("redirect_uri") or "") != row.redirect_uri:
            raise invalid_grant("The redirect_uri does not match the one the code was issued for.")
        if row.code_challenge is not None:
            verifier = params.get_str("code_verifier") or ""
            if not _VERIFIER.match(verifier) or not pkce_matches(row.code_challenge, verifier):
                raise invalid_grant("The code_verifier does not match the code_challenge.")
        if not await consume_code(session, row.code_hash, now):
            raise invalid_grant("The authorization code was already used.")
        return await create_token(session, app.id, row.actor_id, row.scopes.split())


async def _grant_password(request: web.Request, params: Params) -> tuple[str, Token]:
    settings = request.app[SETTINGS]
    # Count the attempt first, in its own transaction (it stays counted when the password is wrong).
    async with write_session(request.app[SESSIONMAKER]) as counter:
        state = await ratelimit.take_login(counter, settings, client_ip(request), now_of(request))
    if not state.allowed:
        raise ApiError(429, "Too many requests", headers=state.headers())
    client_id, secret = client_credentials_of(request, params)
    async with request.app[SESSIONMAKER]() as session:
        app = await authenticate_client(session, client_id, secret)
        scopes = _requested_scopes(params, app)
        result = await check_credentials(session, params.get_str("username") or "",
                                         params.get_str("password") or "", settings.instance.domain)
    if result.actor_id is None:
        description = ("The account is suspended." if result.problem == "suspended"
                       else "The user credentials were incorrect.")
        raise invalid_grant(description)
    async with write_session(request.app[SESSIONMAKER]) as session:
        await mark_login(session, result.actor_id)
        return await create_token(session, app.id, result.actor_id, scopes)


async def _grant_client(request: web.Request, params: Params) -> tuple[str, Token]:
    client_id, secret = client_credentials_of(request, params)
    async with write_session(request.app[SESSIONMAKER]) as session:
        app = await authenticate_client(session, client_id, secret)
        return await create_token(session, app.id, None, _requested_scopes(params, app))


GRANT_HANDLERS = {"authorization_code": _grant_code, "password": _grant_password,
                  "client_credentials": _grant_client}


async def post_token(request: web.Request) -> web.StreamResponse:
    """Exchange a grant for an access token."""
    params = await read_params(request)
    grant = params.get_str("grant_type") or ""
    handler = GRANT_HANDLERS.get(grant)
    if handler is None:
        raise oauth_error(400, "unsupported_grant_type",
                          "The authorization grant type is not supported by the authorization server.")
    token, row = await handler(request, params)
    return json_response(token_to_api(token, row), headers={"Cache-Control": "no-store"})


async def post_revoke(request: web.Request) -> web.StreamResponse:
    """Revoke one of the client's tokens; it stops working at once. Unknown tokens are ignored (RFC 7009)."""
    params = await read_params(request)
    client_id, secret = client_credentials_of(request, params)
    token = params.get_str("token") or ""
    async with write_session(request.app[SESSIONMAKER]) as session:
        app = await authenticate_client(session, client_id, secret)
        if token:
            await session.execute(
                update(Token).where(Token.token_hash == token_digest(token), Token.application_id == app.id,
                                    Token.revoked_at.is_(None))
                .values(revoked_at=utcnow()))
    if token:
        forget_token(request.app, token)
    return json_response({})


async def get_metadata(request: web.Request) -> web.StreamResponse:
    """RFC 8414 metadata, with Mastodon's extra `app_registration_endpoint` (mastodon PR#29191)."""
    base = request.app[SETTINGS].base_url
    return json_response({
        "issuer": f"{base}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": list(ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": list(GRANTS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    })

