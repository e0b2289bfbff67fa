"""CSRF protection of the server's forms (login/consent, registration): a double-submit token.

A random seed lives in a cookie (HttpOnly, SameSite=Lax, Secure over https); the form carries
HMAC(instance secret, seed). A POST is accepted only when both are present and agree, so another
site can neither read the seed nor forge the form token.
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
FIELD = "csrf_token"
_SEED = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
COOKIE_MAX_AGE = 2 * 3600


def _sign(request: web.Request, seed: str) -> str:
    key = request.app[SECRET].encode()
    return hmac.new(key, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def get_seed(request: web.Request) -> str:
    """The visitor's seed from the cookie, or a new one when there is none (or a malformed one)."""
    seed = request.cookies.get(COOKIE, "")
    return seed if _SEED.match(seed) else secrets.token_urlsafe(32)


def form_token(request: web.Request, seed: str) -> str:
    """The value to put in the form's hidden `csrf_token` field for this seed."""
    return _sign(request, seed)


def set_cookie(request: web.Request, response: web.StreamResponse, seed: str) -> None:
    """Store (or refresh) the seed cookie on the page that carries the form."""
    response.set_cookie(COOKIE, seed, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Lax",
                        secure=request_scheme(request) == "https")


def check(request: web.Request, submitted: str | None) -> bool:
    """True when the posted form token matches the cookie's seed."""
    seed = request.cookies.get(COOKIE, "")
    if not submitted or not _SEED.match(seed):
        return False
    return hmac.compare_digest(submitted, _sign(request, seed))
