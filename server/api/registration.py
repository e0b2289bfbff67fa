"""POST /api/v1/accounts: register with a household code, as Mastodon apps do (after a client_credentials
token with `write:accounts`); and the brute-force guard shared with the /register page.

The checks themselves live in `services/registration.py`. Only FAILED code attempts count toward
`ratelimit.failed_codes_per_hour` (per client IP and per code): on the day the letters arrive, hundreds
of households register from behind the same few addresses. Once over the limit nothing is checked or
stored: 429 with `X-RateLimit-*` headers.
"""

from __future__ import annotations

from aiohttp import web

from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.oauth import Token

from ..auth import AuthInfo
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..middleware import client_ip
from ..oauth.authorize import now_of
from ..oauth.token import create_token, token_to_api
from ..services import ratelimit
from ..services.registration import NewResident, RegistrationError, register_resident
from .params import Params, read_params

LOCALES = ("fr", "nl", "de", "en")


class TooManyCodeAttempts(Exception):
    """This client IP or this code failed too often; `state` gives the X-RateLimit-* headers."""

    def __init__(self, state: ratelimit.RateState) -> None:
        super().__init__("too many failed household codes")
        self.state = state


async def register_guarded(request: web.Request, form: NewResident,
                           token_for: AuthInfo | None = None) -> tuple[Actor, tuple[str, Token] | None]:
    """Register unless this IP or code is over the failed-code limit; count the attempt when the code fails.

    Returns the new actor and, when `token_for` (the app's token) is given, a user token for the same app
    and scopes, created in the same transaction. Raises TooManyCodeAttempts or RegistrationError.
    """
    settings = request.app[SETTINGS]
    sessionmaker = request.app[SESSIONMAKER]
    ip, now = client_ip(request), now_of(request)
    async with sessionmaker() as session:
        state = await ratelimit.check_failed_codes(session, settings, ip, form.code, now)
    if not state.allowed:
        raise TooManyCodeAttempts(state)
    try:
        async with write_session(sessionmaker) as session:
            actor = await register_resident(session, settings.base_url, form)
            token = None
            if token_for is not None:
                token = await create_token(session, token_for.application_id, actor.id, sorted(token_for.scopes))
    except RegistrationError as error:
        if error.code_failed:
            async with write_session(sessionmaker) as session:
                await ratelimit.record_failed_code(session, settings, ip, form.code, now)
        raise
    return actor, token


def _display_name(params: Params, username: str | None) -> str:
    display_name = (params.get_str("display_name", max_len=200) or "").strip()
    if not display_name:
        first = (params.get_str("first_name", max_len=100) or "").strip()
        last = (params.get_str("last_name", max_len=100) or "").strip()
        display_name = f"{first} {last}".strip()
    return display_name or (username or "")


def form_from_params(params: Params) -> NewResident:
    """Mastodon's registration parameters (plus `display_name` or `first_name` + `last_name`)."""
    username = (params.get_str("username", max_len=64) or "").strip() or None
    locale = (params.get_str("locale", max_len=16) or "fr").split("-")[0].lower()
    return NewResident(
        code=params.get_str("invite_code", max_len=64) or "",
        display_name=_display_name(params, username),
        email=params.get_str("email", max_len=320) or "",
        password=params.get_str("password", max_len=1024) or "",
        username=username,
        locale=locale if locale in LOCALES else "fr",
        agreement=bool(params.get_bool("agreement", False)),
    )


async def create_account(request: web.Request) -> web.StreamResponse:
    """Register a resident; answers a Token entity for the new account (Mastodon's shape)."""
    params = await read_params(request)
    form = form_from_params(params)
    try:
        _, token = await register_guarded(request, form, token_for=request["auth"])
    except TooManyCodeAttempts as exc:
        raise ratelimit.too_many_requests(exc.state) from None
    except RegistrationError as error:
        raise ApiError(422, error.message, extra={"details": error.details}) from None
    assert token is not None
    return json_response(token_to_api(*token))
