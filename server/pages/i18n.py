"""Translations of the server's own pages (login/consent, registration) and the page renderer.

French is the default; English, Dutch and German are chosen by `?lang=` then by `Accept-Language`,
only among `settings.instance.languages`. The strings live in `server/translations/<lang>.json`
(flat `key -> text` with `{name}` placeholders), shipped as package data.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..keys import SETTINGS

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("fr", "en", "nl", "de")
DEFAULT = "fr"
# Each language named in itself, for the language switch (the same in every language).
LANGUAGE_NAMES = {"fr": "Français", "en": "English", "nl": "Nederlands", "de": "Deutsch"}

# Pages answered to a browser: never cached, never framed (the consent page must not be clickjacked).
# No `form-action`: browsers apply it to the redirect after the form, which goes to the app's own
# (often custom-scheme) redirect URI.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """The strings of one language (read once per process)."""
    with open(TRANSLATIONS / f"{lang}.json", encoding="utf-8") as handle:
        return json.load(handle)


def t(lang: str, key: str, **fmt: Any) -> str:
    """The text of `key` in `lang` (falling back to French, then to the key), formatted with `fmt`."""
    text = catalog(lang).get(key) if lang in LANGUAGES else None
    if text is None:
        text = catalog(DEFAULT).get(key, key)
    return text.format(**fmt) if fmt else text


def _accept_language(header: str) -> list[str]:
    """Primary language tags of an Accept-Language header, best first (`nl-BE;q=0.9` -> `nl`)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.split("-")[0].strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(request: web.Request) -> str:
    """`?lang=` if offered, else the best offered language of Accept-Language, else French."""
    offered = request.app[SETTINGS].instance.languages
    wanted = request.query.get("lang", "").strip().lower()[:8]
    if wanted in offered:
        return wanted
    for tag in _accept_language(request.headers.get("Accept-Language", "")):
        if tag in offered:
            return tag
    return DEFAULT if DEFAULT in offered else offered[0]


def translator(lang: str) -> Callable[..., str]:
    return functools.partial(t, lang)


def language_links(request: web.Request) -> list[tuple[str, str, str]]:
    """(code, name, url) to show the same page in each offered language (GET pages only)."""
    if request.method != "GET":
        return []
    links = []
    for code in request.app[SETTINGS].instance.languages:
        query = {k: v for k, v in request.query.items() if k != "lang"}
        query["lang"] = code
        links.append((code, LANGUAGE_NAMES[code], f"{request.path}?{urlencode(query)}"))
    return links


@functools.cache
def templates() -> Any:
    """The pages' Jinja environment (autoescaped), made when the first page is asked for: most
    processes serve only the API, and jinja2 costs start-up time and memory."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("voisinage.server", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(request: web.Request, template: str, lang: str, *, status: int = 200,
                headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    """Render `templates/<template>` in `lang` (autoescaped) as an HTML response with safe headers."""
    env = templates()
    settings = request.app[SETTINGS]
    html = env.get_template(template).render(
        t=translator(lang), lang=lang, languages=settings.instance.languages,
        instance_name=settings.instance.name, lang_links=language_links(request), **context)
    response = web.Response(status=status, text=html, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


def error_page(request: web.Request, lang: str, status: int, message_key: str,
               headers: dict[str, str] | None = None, **fmt: Any) -> web.Response:
    """A plain page telling what went wrong, in the visitor's language."""
    return render_page(request, "error.html", lang, status=status, headers=headers,
                       message=t(lang, message_key, **fmt))
