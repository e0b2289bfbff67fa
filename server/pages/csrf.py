"""CSRF protection of the server's forms (login/consent, registration): a double-submit token.

A random seed lives in a cookie (HttpOnly, SameSite=Lax, Secure over https); the form carries
HMAC(instance secret, seed). A POST is accepted only when both are present and agree, so another
site can neither read the seed nor forge the form token. Over https the cookie is named with the
`__Host-` prefix, which browsers only accept from this very host: a sibling subdomain cannot plant a
seed whose form token it learned from its own visit (cookie tossing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from aiohttp import web

from ..keys import SECRET
from ..middleware import request_scheme

COOKIE = "voisinage_csrf"
SECURE_COOKIE = "__Host-" + COOKIE
FIELD = "csrf_token"
_SEED = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
COOKIE_MAX_AGE = 2 * 3600


def _sign(request: web.Request, seed: str) -> str:
    key = request.app[SECRET].encode()
    return hmac.new(key, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def cookie_name(request: web.Request) -> str:
    """`__Host-voisinage_csrf` over https (as the browser sees it), `voisinage_csrf` over plain http."""
    return SECURE_COOKIE if request_scheme(request) == "https" else COOKIE


def get_seed(request: web.Request) -> str:
    """The visitor's seed from the cookie, or a new one when there is none (or a malformed one)."""
    seed = request.cookies.get(cookie_name(request), "")
    return seed if _SEED.match(seed) else secrets.token_urlsafe(32)


def form_token(request: web.Request, seed: str) -> str:
    """The value to put in the form's hidden `csrf_token` field for this seed."""
    return _sign(request, seed)


def set_cookie(request: web.Request, response: web.StreamResponse, seed: str) -> None:
    """Store (or refresh) the seed cookie on the page that carries the form."""
    name = cookie_name(request)
    response.set_cookie(name, seed, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
                        secure=name == SECURE_COOKIE)


def check(request: web.Request, submitted: str | None) -> bool:
    """True when the posted form token matches the cookie's seed."""
    seed = request.cookies.get(cookie_name(request), "")
    if not submitted or not _SEED.match(seed):
        return False
    return hmac.compare_digest(submitted, _sign(request, seed))
