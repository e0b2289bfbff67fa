"""GET/POST /register: the registration page a household reaches from its letter (`?code=...`).

The form asks for first and last name, e-mail, password (twice), the house rules and the household
code (pre-filled from the letter's QR code). The account name is derived from the name by the service.
Success shows the handle, the address to type into an app, and apps to install.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..api.registration import TooManyCodeAttempts, register_guarded
from ..keys import SETTINGS
from ..services.registration import NewResident, RegistrationError
from . import csrf
from .i18n import choose_language, error_page, render_page, t

FIELDS = ("code", "first_name", "last_name", "email")

# Apps known to work, for phones and the browser (DESIGN.md: residents use any Mastodon app).
APPS = [
    {"name": "Tusky", "where": "android", "url": "https://tusky.app/"},
    {"name": "Mastodon", "where": "android_ios", "url": "https://joinmastodon.org/apps"},
    {"name": "Ivory", "where": "ios", "url": "https://tapbots.com/ivory/"},
    {"name": "Ice Cubes", "where": "ios", "url": "https://github.com/Dimillian/IceCubesApp"},
    {"name": "Phanpy", "where": "browser", "url": "https://phanpy.social/"},
    {"name": "Elk", "where": "browser", "url": "https://elk.zone/"},
]

# service field -> the page's field that shows the message
_FIELD_OF = {"display_name": "first_name", "invite_code": "code", "username": "first_name"}


def _show_form(request: web.Request, lang: str, values: dict[str, str], *, status: int = 200,
               errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
               notice: str | None = None) -> web.Response:
    seed = csrf.get_seed(request)
    response = render_page(request, "register.html", lang, status=status, headers=headers,
                           values={name: values.get(name, "") for name in FIELDS}, errors=errors or {},
                           agreement=values.get("agreement") == "on", notice=notice,
                           csrf_token=csrf.form_token(request, seed),
                           action=f"/register?{urlencode({'lang': lang})}")
    csrf.set_cookie(request, response, seed)
    return response


async def get_register(request: web.Request) -> web.StreamResponse:
    """The empty form, with the household code filled in from `?code=`."""
    lang = choose_language(request)
    return _show_form(request, lang, {"code": request.query.get("code", "")[:64]})


def errors_to_page(lang: str, error: RegistrationError) -> dict[str, list[str]]:
    """The service's per-field errors as translated messages keyed by the page's fields."""
    out: dict[str, list[str]] = {}
    for name, items in error.details.items():
        for item in items:
            key = f"register.error.{name}.{item['error']}"
            message = t(lang, key)
            if message == key:
                message = t(lang, f"register.error.{name}")
            out.setdefault(_FIELD_OF.get(name, name), []).append(message)
    return out


def _values(form: Any) -> dict[str, str]:
    """The posted fields, trimmed (passwords are kept exactly as typed)."""
    return {k: v if k.startswith("password") else v.strip() for k, v in form.items() if isinstance(v, str)}


async def post_register(request: web.Request) -> web.StreamResponse:
    """Create the account (CSRF and the failed-code limit first), then show how to log in from an app."""
    lang = choose_language(request)
    values = _values(await request.post())
    if not csrf.check(request, values.get(csrf.FIELD)):
        return error_page(request, lang, 403, "error.csrf")
    if values.get("password", "") != values.get("password_confirmation", ""):
        return _show_form(request, lang, values, status=422,
                          errors={"password": [t(lang, "register.error.password_confirmation")]})
    form = NewResident(
        code=values.get("code", "")[:64],
        display_name=f"{values.get('first_name', '')[:100]} {values.get('last_name', '')[:100]}".strip(),
        email=values.get("email", "")[:320], password=values.get("password", "")[:1024],
        username=None, locale=lang, agreement=values.get("agreement") == "on")
    try:
        actor, _ = await register_guarded(request, form)
    except TooManyCodeAttempts as exc:
        return error_page(request, lang, 429, "register.too_many", headers=exc.state.headers())
    except RegistrationError as error:
        return _show_form(request, lang, values, status=422, errors=errors_to_page(lang, error))
    domain = request.app[SETTINGS].instance.domain
    return render_page(request, "register_done.html", lang, handle=f"@{actor.username}@{domain}",
                       domain=domain, display_name=actor.display_name, apps=APPS)
