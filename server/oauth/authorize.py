"""GET/POST /oauth/authorize: the login and consent page, in one form.

GET checks the request (client, registered redirect URI, scopes within the app's, PKCE S256) and shows
the page; a bad client or redirect URI gets an error page (400), never a redirect. POST checks the CSRF
token, the login rate limit (per client IP) and the credentials, then issues a single-use code valid
10 minutes and redirects to `redirect_uri?code=...&state=...` (for `urn:ietf:wg:oauth:2.0:oob`, a page
shows the code). There is no browser session: the resident types their password each time, which is
what `force_login` asks for anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import PERSON, Actor
from voisinage.models.db import write_session
from voisinage.models.oauth import Application, AuthorizationCode, token_digest
from voisinage.models.resident import Resident

from ..auth import parse_scopes, scope_allows
from ..errors import ApiError
from ..keys import CLOCK, SESSIONMAKER, SETTINGS
from ..middleware import client_ip
from ..pages import csrf
from ..pages.i18n import choose_language, error_page, render_page, t
from ..services import ratelimit
from ..services.passwords import verify_password
from .apps import OOB, get_app_by_client_id, split_redirect_uris

CODE_LIFETIME = dt.timedelta(minutes=10)
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")


class AuthorizeError(Exception):
    """A request we cannot serve; shown as a page with the translated message `key`."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class AuthRequest:
    """A checked authorization request."""

    app: Application
    redirect_uri: str
    scopes: list[str]
    state: str
    code_challenge: str | None

    def hidden_fields(self) -> dict[str, str]:
        fields = {"response_type": "code", "client_id": self.app.client_id, "redirect_uri": self.redirect_uri,
                  "scope": " ".join(self.scopes), "state": self.state}
        if self.code_challenge:
            fields.update(code_challenge=self.code_challenge, code_challenge_method="S256")
        return fields


def scopes_within(requested: list[str], granted: list[str]) -> bool:
    """Every requested scope is one the app registered, or covered by one (`read` covers `read:statuses`)."""
    allowed = frozenset(granted)
    return all(scope_allows(allowed, scope) for scope in requested)


def _pick_redirect(app: Application, wanted: str) -> str:
    registered = split_redirect_uris(app.redirect_uris)
    if not wanted and len(registered) == 1:
        return registered[0]
    if wanted not in registered:
        raise AuthorizeError("error.redirect_uri")
    return wanted


def _pick_scopes(app: Application, text: str) -> list[str]:
    try:
        scopes = parse_scopes(text or None, default="read")
    except ApiError:
        raise AuthorizeError("error.scope") from None
    if not text and not scopes_within(scopes, app.scopes.split()):
        scopes = app.scopes.split()  # no scope asked and the app may not read: grant what it registered
    if not scopes_within(scopes, app.scopes.split()):
        raise AuthorizeError("error.scope")
    return scopes


def _pick_challenge(params: dict[str, str]) -> str | None:
    challenge = params.get("code_challenge", "").strip()
    method = params.get("code_challenge_method", "").strip()
    if not challenge:
        if method:
            raise AuthorizeError("error.pkce")
        return None
    if method != "S256" or not _CHALLENGE.match(challenge):
        raise AuthorizeError("error.pkce")  # `plain` is refused: it protects nothing
    return challenge


async def check_request(session: AsyncSession, params: dict[str, str]) -> AuthRequest:
    """Validate an authorization request (from the query string or the posted form)."""
    app = await get_app_by_client_id(session, params.get("client_id", "").strip())
    if app is None:
        raise AuthorizeError("error.client")
    redirect_uri = _pick_redirect(app, params.get("redirect_uri", "").strip())
    if params.get("response_type", "code") != "code":
        raise AuthorizeError("error.response_type")
    scopes = _pick_scopes(app, params.get("scope", "").strip())
    return AuthRequest(app, redirect_uri, scopes, params.get("state", "")[:1000], _pick_challenge(params))


def scope_descriptions(lang: str, scopes: list[str]) -> list[str]:
    """Each scope in plain words: `read:statuses` -> "read your posts"."""
    out = []
    for scope in scopes:
        if scope.startswith("admin:"):
            out.append(t(lang, "scope.admin"))
        elif ":" in scope:
            family, thing = scope.split(":", 1)
            out.append(t(lang, f"scope.{family}_part", what=t(lang, f"thing.{thing}")))
        else:
            out.append(t(lang, f"scope.{scope}"))
    return list(dict.fromkeys(out))


def _show_form(request: web.Request, lang: str, auth: AuthRequest, *, status: int = 200,
               error: str | None = None, login: str = "", headers: dict[str, str] | None = None) -> web.Response:
    seed = csrf.get_seed(request)
    response = render_page(
        request, "authorize.html", lang, status=status, headers=headers, app_name=auth.app.name,
        app_website=auth.app.website, scopes=scope_descriptions(lang, auth.scopes), fields=auth.hidden_fields(),
        csrf_token=csrf.form_token(request, seed), error=error, login=login,
        action=f"/oauth/authorize?{urlencode({'lang': lang})}")
    csrf.set_cookie(request, response, seed)
    return response


async def get_authorize(request: web.Request) -> web.StreamResponse:
    """Show the login and consent page for a valid authorization request."""
    lang = choose_language(request)
    async with request.app[SESSIONMAKER]() as session:
        try:
            auth = await check_request(session, dict(request.query))
        except AuthorizeError as exc:
            return error_page(request, lang, 400, exc.key)
    return _show_form(request, lang, auth)


@dataclass(frozen=True)
class LoginResult:
    actor_id: int | None
    problem: str | None  # "invalid" or "suspended"; None when the credentials are good


async def _find_login(session: AsyncSession, login: str, domain: str) -> tuple[Resident, Actor] | None:
    login = login.strip().lower().removeprefix("@")
    if login.endswith(f"@{domain}"):
        by_email = await session.scalar(select(Resident).where(Resident.email == login))
        if by_email is None:
            login = login[: -len(domain) - 1]
    query = select(Resident, Actor).join(Actor, Actor.id == Resident.actor_id)
    if "@" in login:
        query = query.where(Resident.email == login)
    else:
        query = query.where(func.lower(Actor.username) == login, Actor.domain == "", Actor.kind == PERSON)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def check_credentials(session: AsyncSession, login: str, password: str, domain: str) -> LoginResult:
    """An e-mail address or account name and a password -> the resident's actor id, or why not."""
    found = await _find_login(session, login, domain) if login.strip() and len(login) <= 320 else None
    password_hash = found[0].password_hash if found else None
    good = await asyncio.to_thread(verify_password, password_hash, password[:1024])
    if found is None or not good:
        return LoginResult(None, "invalid")
    if found[1].suspended_at is not None:
        return LoginResult(None, "suspended")
    return LoginResult(found[1].id, None)


async def mark_login(session: AsyncSession, actor_id: int) -> None:
    await session.execute(update(Resident).where(Resident.actor_id == actor_id)
                          .values(last_login_at=dt.datetime.now(dt.UTC)))


def now_of(request: web.Request) -> float:
    """The app's clock (Unix seconds); tests may move it."""
    clock = cast(Callable[[], float], request.app[CLOCK])
    return float(clock())


async def create_code(session: AsyncSession, request: web.Request, auth: AuthRequest, actor_id: int) -> str:
    """A single-use authorization code, valid 10 minutes; only its digest is stored."""
    code = secrets.token_urlsafe(32)
    expires = dt.datetime.fromtimestamp(now_of(request), dt.UTC) + CODE_LIFETIME
    session.add(AuthorizationCode(code_hash=token_digest(code), application_id=auth.app.id, actor_id=actor_id,
                                  scopes=" ".join(auth.scopes), redirect_uri=auth.redirect_uri,
                                  code_challenge=auth.code_challenge, expires_at=expires))
    return code


def redirect_with(uri: str, values: dict[str, str]) -> web.Response:
    """302 to the app's registered URI with `values` added to its query (its scheme is kept as written)."""
    query = urlencode({k: v for k, v in values.items() if v})
    location = uri + ("&" if "?" in uri else "?") + query
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


async def post_authorize(request: web.Request) -> web.StreamResponse:
    """Check CSRF, rate limit and credentials; then issue a code and send the resident back to the app."""
    lang = choose_language(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not csrf.check(request, form.get(csrf.FIELD)):
        return error_page(request, lang, 403, "error.csrf")
    async with request.app[SESSIONMAKER]() as session:
        try:
            auth = await check_request(session, form)
        except AuthorizeError as exc:
            return error_page(request, lang, 400, exc.key)
    if form.get("decision") == "deny":
        return redirect_with(auth.redirect_uri, {"error": "access_denied", "state": auth.state}) \
            if auth.redirect_uri != OOB else error_page(request, lang, 200, "authorize.denied")
    return await _login_and_issue(request, lang, auth, form)


async def _login_and_issue(request: web.Request, lang: str, auth: AuthRequest,
                           form: dict[str, str]) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    login = form.get("login", "")
    async with write_session(request.app[SESSIONMAKER]) as session:
        state = await ratelimit.take_login(session, settings, client_ip(request), now_of(request))
    if not state.allowed:
        return _show_form(request, lang, auth, status=429, error=t(lang, "error.too_many_logins"),
                          login=login, headers=state.headers())
    async with request.app[SESSIONMAKER]() as session:
        result = await check_credentials(session, login, form.get("password", ""), settings.instance.domain)
    if result.actor_id is None:
        return _show_form(request, lang, auth, status=401, login=login,
                          error=t(lang, f"error.login_{result.problem}"))
    async with write_session(request.app[SESSIONMAKER]) as session:
        await mark_login(session, result.actor_id)
        code = await create_code(session, request, auth, result.actor_id)
    if auth.redirect_uri == OOB:
        return render_page(request, "authorize_code.html", lang, code=code, app_name=auth.app.name)
    return redirect_with(auth.redirect_uri, {"code": code, "state": auth.state})


async def consume_code(session: AsyncSession, code_hash: str, now: dt.datetime) -> bool:
    """Mark a code used, atomically: of two exchanges racing for one code, only one wins."""
    done: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used.is_(False),
               AuthorizationCode.expires_at > now)
        .values(used=True))
    return done.rowcount == 1
