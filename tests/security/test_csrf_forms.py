"""CSRF on every form: walk the server's pages, find each form, and post it without a valid
double-submit pair (no token, a wrong one, no cookie, another visitor's cookie, the token in the URL).

Each forged post is refused (403, no redirect to the app) and stores nothing: no account, no
authorization code, no token, no household use. The same form with its own pair goes through,
so the refusals are the token's doing.
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path
from typing import Any

from voisinage.models.actor import Actor
from voisinage.models.oauth import AuthorizationCode, Token
from voisinage.models.resident import Resident
from voisinage.models.village import Household
from voisinage.server.app import create_app
from voisinage.server.pages import csrf
from voisinage.server.routes import ROUTES

from ..conftest import make_settings
from ..rig import cast
from ..rig.commune import Commune
from ..server.test_oauth import register_app

FORM = re.compile(r"<form\b[^>]*>(.*?)</form>", re.S | re.I)
INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


async def stored(rig: Any) -> tuple[int, ...]:
    uses = sum(h.uses for h in await rig.rows(Household))
    return (await rig.count(Actor), await rig.count(Resident), await rig.count(AuthorizationCode),
            await rig.count(Token), uses)


async def visit(rig: Any, url: str) -> tuple[str, dict[str, str], str]:
    """A new visitor opens `url`: (its cookie seed, the hidden fields of the page's form, the page)."""
    rig.client.session.cookie_jar.clear()
    async with rig.client.get(url) as response:
        assert response.status == 200, url
        page = await response.text()
        seed = response.cookies[csrf.COOKIE].value
    forms = FORM.findall(page)
    assert len(forms) == 1, url
    return seed, {k: htmllib.unescape(v) for k, v in INPUT.findall(forms[0])}, page


async def submit(rig: Any, path: str, data: dict[str, str], seed: str | None) -> tuple[int, Any]:
    rig.client.session.cookie_jar.clear()
    headers = {"Cookie": f"{csrf.COOKIE}={seed}"} if seed is not None else {}
    async with rig.client.post(path, data=data, headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers


async def form_pages(rig: Any) -> dict[str, tuple[str, dict[str, str]]]:
    """Every open HTML page of the route table with the URL that opens it and what a visitor fills in."""
    app = await register_app(rig.client)
    code = (await rig.codes("north"))[0]
    fill = {
        "/oauth/authorize": (f"/oauth/authorize?response_type=code&client_id={app['client_id']}"
                             f"&redirect_uri={app['redirect_uris'][0]}&scope=read&state=s",
                             {"login": "alder", "password": cast.PASSWORD, "decision": "allow"}),
        "/register": (f"/register?code={code}", {
            "code": code, "first_name": "Marie", "last_name": "Lambert", "email": "marie@example.org",
            "password": cast.PASSWORD, "password_confirmation": cast.PASSWORD, "agreement": "on"}),
    }
    pages = {r.path for r in ROUTES if r.method == "POST" and r.scope is None
             and not r.path.startswith(("/api/", "/oauth/token", "/oauth/revoke"))}
    assert pages == set(fill), f"a form page without a CSRF test: {pages ^ set(fill)}"
    return fill


async def test_every_form_refuses_a_forged_post_and_stores_nothing(rig: Any) -> None:
    for path, (url, values) in (await form_pages(rig)).items():
        seed, hidden, page = await visit(rig, url)
        assert csrf.FIELD in hidden and hidden[csrf.FIELD], f"{path}: the form has no token"
        other_seed, other_hidden, _ = await visit(rig, url)
        assert other_hidden[csrf.FIELD] != hidden[csrf.FIELD]
        good = {**hidden, **values}
        forged = {
            "no token": ({k: v for k, v in good.items() if k != csrf.FIELD}, seed),
            "empty token": ({**good, csrf.FIELD: ""}, seed),
            "wrong token": ({**good, csrf.FIELD: "0" * 64}, seed),
            "no cookie": (good, None),
            "another visitor's cookie": (good, other_seed),
            "another visitor's token": ({**good, csrf.FIELD: other_hidden[csrf.FIELD]}, seed),
            "the seed as token": ({**good, csrf.FIELD: seed}, seed),
            "malformed cookie": (good, "short"),
        }
        if path == "/oauth/authorize":
            forged["a forged refusal"] = ({**good, "decision": "deny", csrf.FIELD: "0" * 64}, seed)
        before = await stored(rig)
        for case, (data, cookie) in forged.items():
            status, headers = await submit(rig, path, data, cookie)
            assert status == 403 and "Location" not in headers, (path, case, status)
        status, headers = await submit(rig, f"{path}?{csrf.FIELD}={hidden[csrf.FIELD]}",
                                       {k: v for k, v in good.items() if k != csrf.FIELD}, seed)
        assert status == 403, (path, "token in the URL")
        assert await stored(rig) == before, path
        status, headers = await submit(rig, path, good, seed)  # the visitor's own pair
        assert status in (200, 302, 303) and await stored(rig) != before, (path, status)


async def test_over_https_the_seed_cookie_is_host_only_and_a_tossed_cookie_is_refused(
        aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    """Behind a trusted https proxy the seed cookie is `__Host-` (Secure, Path=/, no Domain); a plain
    `voisinage_csrf` cookie, which a sibling subdomain could plant, is not read."""
    settings = make_settings(db_url, tmp_path, server={"trusted_proxies": ["127.0.0.1", "::1"]})
    rig = await Commune(await aiohttp_client(create_app(settings))).seed("alder")
    https = {"X-Forwarded-Proto": "https"}
    app = await register_app(rig.client)
    url = (f"/oauth/authorize?response_type=code&client_id={app['client_id']}"
           f"&redirect_uri={app['redirect_uris'][0]}&scope=read&state=s")
    async with rig.client.get(url, headers=https) as response:
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
        page = await response.text()
    assert cookie.startswith(f"{csrf.SECURE_COOKIE}=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    seed = cookie.split("=", 1)[1].split(";", 1)[0]
    form = {**{k: htmllib.unescape(v) for k, v in INPUT.findall(FORM.findall(page)[0])},
            "login": "alder", "password": cast.PASSWORD, "decision": "allow"}
    before = await stored(rig)
    for name in (csrf.COOKIE, f"__Secure-{csrf.COOKIE}"):  # the seed under a name a subdomain can set
        rig.client.session.cookie_jar.clear()
        async with rig.client.post("/oauth/authorize", data=form, allow_redirects=False,
                                   headers={**https, "Cookie": f"{name}={seed}"}) as response:
            assert response.status == 403, name
    assert await stored(rig) == before
    async with rig.client.post("/oauth/authorize", data=form, allow_redirects=False,
                               headers={**https, "Cookie": f"{csrf.SECURE_COOKIE}={seed}"}) as response:
        assert response.status == 302
    assert await stored(rig) != before
