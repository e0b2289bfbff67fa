"""The server's own pages: the /register page, translations in four languages, CSRF, the 429 page."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from typing import Any

from voisinage.models.actor import Actor
from voisinage.models.follow import Follow
from voisinage.models.resident import Resident
from voisinage.models.village import Household
from voisinage.server.app import create_app
from voisinage.server.auth import ALL_SCOPES
from voisinage.server.oauth import authorize
from voisinage.server.pages import i18n, register

from ..conftest import make_settings
from ..rig.commune import Commune
from .test_oauth import csrf_of

SERVER = Path(i18n.__file__).resolve().parent.parent
PASSWORD = "a long enough password"


async def get_page(commune: Commune, path: str, **kw: Any) -> tuple[int, str]:
    async with commune.client.get(path, **kw) as r:
        assert "text/html" in r.headers["Content-Type"]
        return r.status, await r.text()


async def post_form(commune: Commune, path: str, data: dict[str, str], **kw: Any) -> tuple[int, str, Any]:
    async with commune.client.post(path, data=data, allow_redirects=False, **kw) as r:
        return r.status, await r.text(), r.headers


async def register_form(commune: Commune, household_code: str, **changes: str | None) -> dict[str, str]:
    status, page = await get_page(commune, f"/register?code={household_code}")
    assert status == 200
    form = {"csrf_token": csrf_of(page), "code": household_code, "first_name": "Marie", "last_name": "Lambert",
            "email": "marie@example.org", "password": PASSWORD, "password_confirmation": PASSWORD,
            "agreement": "on"}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


async def counts(commune: Commune) -> tuple[int, int, int, int]:
    uses = sum(h.uses for h in await commune.rows(Household))
    return await commune.count(Actor), await commune.count(Resident), await commune.count(Follow), uses


# --- translations ----------------------------------------------------------------------------------

def test_every_language_has_every_key():
    catalogs = {lang: json.loads((SERVER / "translations" / f"{lang}.json").read_text("utf-8"))
                for lang in ("fr", "en", "nl", "de")}
    keys = set(catalogs["fr"])
    assert len(keys) > 50
    for lang, catalog in catalogs.items():
        assert set(catalog) == keys, lang
        assert all(isinstance(v, str) and v.strip() for v in catalog.values()), lang


def test_templates_use_only_known_keys():
    keys = set(json.loads((SERVER / "translations" / "fr.json").read_text("utf-8")))
    used: set[str] = set()
    for template in (SERVER / "templates").glob("*.html"):
        used |= set(re.findall(r"""t\(\s*["']([a-z_.0-9]+)["']\s*[,)]""", template.read_text("utf-8")))
    used |= {f"done.where.{app['where']}" for app in register.APPS}
    assert used and used <= keys, used - keys


def test_every_scope_and_form_error_has_words():
    keys = set(json.loads((SERVER / "translations" / "fr.json").read_text("utf-8")))
    for lang in ("fr", "en", "nl", "de"):
        for text in authorize.scope_descriptions(lang, list(ALL_SCOPES)):
            assert "scope." not in text and "thing." not in text, (lang, text)
    for field in ("invite_code", "display_name", "email", "password", "agreement", "username"):
        assert f"register.error.{field}" in keys
    for name in ("csrf", "client", "redirect_uri", "response_type", "scope", "pkce", "too_many_logins",
                 "login_invalid", "login_suspended"):
        assert f"error.{name}" in keys


def test_translate_formats_and_falls_back():
    assert i18n.t("de", "authorize.intro", app="Tusky") == "Die App „Tusky“ bittet um Zugriff auf Ihr Konto."
    assert i18n.t("xx", "register.code") == "Code du ménage"
    assert i18n.t("en", "no.such.key") == "no.such.key"


async def test_register_page_language_selection(commune):
    status, page = await get_page(commune, "/register")
    assert '<html lang="fr">' in page and "Code du ménage" in page and "règles de la maison" in page
    status, page = await get_page(commune, "/register?lang=de")
    assert '<html lang="de">' in page and "Haushaltscode" in page and "Hausregeln" in page
    status, page = await get_page(commune, "/register", headers={"Accept-Language": "nl;q=0.8, en;q=0.5"})
    assert '<html lang="nl">' in page and "Gezinscode" in page
    status, page = await get_page(commune, "/register", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in page and "Household code" in page


async def test_only_configured_languages_are_offered(aiohttp_client, db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, instance={"languages": ("nl", "fr")})
    commune = Commune(await aiohttp_client(create_app(settings)))
    status, page = await get_page(commune, "/register?lang=de", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in page
    assert "Deutsch" not in page and "Nederlands" in page


# --- the registration page -------------------------------------------------------------------------

async def test_register_page_prefills_the_code_and_escapes_it(commune):
    status, page = await get_page(commune, "/register?code=K7QF-3MZP-X9TD-HW2R")
    assert status == 200
    assert 'name="code" type="text" value="K7QF-3MZP-X9TD-HW2R"' in page
    assert 'name="viewport"' in page and csrf_of(page)
    status, page = await get_page(commune, '/register?code="><script>alert(1)</script>')
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


async def test_register_page_creates_the_account_and_shows_how_to_log_in(commune):
    code = (await commune.codes("north"))[0]
    form = await register_form(commune, code)
    status, page, _ = await post_form(commune, "/register", form)
    assert status == 200, page
    assert "@marie_lambert@a.test" in page
    for app in ("Tusky", "Mastodon", "Ivory", "Ice Cubes", "Phanpy", "Elk"):
        assert app in page
    assert '<code class="code">a.test</code>' in page
    actor = (await commune.rows(Actor, Actor.username == "marie_lambert"))[0]
    assert actor.display_name == "Marie Lambert" and actor.fields[0]["verified_at"]
    resident = (await commune.rows(Resident, Resident.actor_id == actor.id))[0]
    assert resident.email == "marie@example.org" and resident.locale == "fr"
    assert await commune.count(Follow, Follow.follower_id == actor.id,
                               Follow.target_id == commune.village_ids["north"]) == 1


async def test_register_page_in_german_stores_the_locale(commune):
    code = (await commune.codes("north"))[0]
    form = await register_form(commune, code)
    status, page, _ = await post_form(commune, "/register?lang=de", form)
    assert status == 200 and "Willkommen" in page
    assert (await commune.rows(Resident))[0].locale == "de"


async def test_register_page_errors_are_shown_and_nothing_is_stored(commune):
    code = (await commune.codes("north"))[0]
    before = await counts(commune)
    cases = [
        ({"code": "WRNG-WRNG-WRNG-WRNG"}, "Ce code n'est pas valable"),
        ({"password": "short", "password_confirmation": "short"}, "8 à 128 caractères"),
        ({"password_confirmation": "something else"}, "ne sont pas identiques"),
        ({"agreement": None}, "accepter les règles"),
        ({"email": "nope"}, "adresse e-mail valable"),
        ({"first_name": "", "last_name": ""}, "prénom et votre nom"),
    ]
    for changes, message in cases:
        form = await register_form(commune, code, **changes)
        status, page, _ = await post_form(commune, "/register", form)
        assert status == 422, changes
        assert message in htmllib.unescape(page), (changes, page)
        assert 'value="Marie"' in page or changes.get("first_name") == ""  # what was typed is kept
        assert 'value="' + PASSWORD + '"' not in page  # passwords are never echoed back
    assert await counts(commune) == before


async def test_register_page_without_csrf_token_is_refused(commune):
    code = (await commune.codes("north"))[0]
    before = await counts(commune)
    form = await register_form(commune, code)
    del form["csrf_token"]
    status, page, _ = await post_form(commune, "/register", form)
    assert status == 403 and "formulaire a expiré" in htmllib.unescape(page)
    form = await register_form(commune, code, csrf_token="f" * 64)
    status, _, _ = await post_form(commune, "/register", form)
    assert status == 403
    assert await counts(commune) == before


async def test_register_page_429_after_too_many_wrong_codes(aiohttp_client, db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, ratelimit={"failed_codes_per_hour": 2})
    commune = Commune(await aiohttp_client(create_app(settings))).hold_clock()
    await commune.add_village("north")
    for n in range(2):
        form = await register_form(commune, f"WRNG-{n}AAA-AAAA-AAAA")
        status, _, _ = await post_form(commune, "/register", form)
        assert status == 422
    good = (await commune.codes("north"))[0]
    before = await counts(commune)
    form = await register_form(commune, good)
    status, page, headers = await post_form(commune, "/register?lang=en", form)
    assert status == 429
    assert "Too many wrong codes" in page
    assert headers["X-RateLimit-Limit"] == "2" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"]
    assert await counts(commune) == before
