"""What a resident typed -> safe HTML, with the accounts it mentions and the hashtags it carries.

Everything typed is escaped; the only markup is ours: paragraphs (blank lines) and line breaks, links
for http(s) URLs, Mastodon-shaped mention and hashtag links (apps recognise the `mention`, `u-url`,
`h-card` and `hashtag` classes). The result still goes through the one allow-list, `models.html.sanitize`.

Mentions are resolved by `resolve_mentions`: local accounts and villages (`@name` or `@name@our.domain`)
and remote actors we already know. An unknown remote `@user@other.host` stays plain text; that
function is the seam where federation will add a WebFinger lookup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor
from voisinage.models.html import sanitize

MAX_TAG_LENGTH = 100
URL_LENGTH = 23  # what a link counts for in the 500 characters, as Mastodon's `characters_reserved_per_url`

_URL = r"(?P<url>https?://[^\s<>\"']+)"
_MENTION = (r"(?<![\w@/.])@(?P<user>[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*)"
            r"(?:@(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?))?")
_HASHTAG = r"(?<![\w#&/])#(?P<tag>\w*[^\W\d_]\w*)"
TOKEN = re.compile("|".join((_URL, _MENTION, _HASHTAG)))
URL_ONLY = re.compile(_URL)
_TRAILING = ".,;:!?'\")]"

Handle = tuple[str, str]  # (username lower-cased, domain lower-cased; "" for ours)


@dataclass
class RenderedText:
    """The HTML of a post, the actors it mentions (in order, once each) and its hashtags (lower-cased)."""

    html: str
    mentions: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def trim_url(url: str) -> str:
    """Drop punctuation that ends a sentence rather than the URL; keep a `)` that closes a `(` in it."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def count_characters(text: str) -> int:
    """Characters as Mastodon counts them: every link counts as 23."""
    total, last = 0, 0
    for match in URL_ONLY.finditer(text):
        url = trim_url(match.group("url"))
        total += match.start() - last + URL_LENGTH
        last = match.start() + len(url)
    return total + len(text) - last


def handle_of(user: str, host: str | None, local_domain: str) -> Handle:
    """(user, domain) lower-cased; our own domain becomes "" (local accounts)."""
    domain = (host or "").lower()
    if domain == local_domain.lower():
        domain = ""
    return user.lower(), domain


def mention_handles(text: str, local_domain: str) -> list[Handle]:
    """Every `@user` / `@user@host` written in the text, in order, once each."""
    seen: list[Handle] = []
    for match in TOKEN.finditer(text):
        if match.group("user"):
            handle = handle_of(match.group("user"), match.group("host"), local_domain)
            if handle not in seen:
                seen.append(handle)
    return seen


async def resolve_mentions(session: AsyncSession, handles: Iterable[Handle]) -> dict[Handle, Actor]:
    """The actors these handles name, among accounts we store (local, or remote ones already known).

    Federation will extend this with a WebFinger lookup of unknown remote handles.
    """
    wanted = list(dict.fromkeys(handles))
    if not wanted:
        return {}
    conditions = [and_(func.lower(Actor.username) == user, Actor.domain == domain) for user, domain in wanted]
    found: dict[Handle, Actor] = {}
    for actor in await session.scalars(select(Actor).where(or_(*conditions), Actor.suspended_at.is_(None))):
        found[(actor.username.lower(), actor.domain.lower())] = actor
    return found


def _mention_html(actor: Actor) -> str:
    href = html.escape(actor.url or actor.uri, quote=True)
    return (f'<span class="h-card"><a href="{href}" class="u-url mention">'
            f'@<span>{html.escape(actor.username)}</span></a></span>')


def _hashtag_html(tag: str, base_url: str) -> str:
    href = html.escape(f"{base_url}/tags/{quote(tag.lower())}", quote=True)
    return f'<a href="{href}" class="mention hashtag" rel="tag">#<span>{html.escape(tag)}</span></a>'


def _url_html(url: str) -> str:
    href = html.escape(url, quote=True)
    return f'<a href="{href}" rel="nofollow noopener noreferrer" target="_blank">{html.escape(url)}</a>'


class _LineRenderer:
    """Turns one line of text into HTML, collecting mentions and tags as it goes."""

    def __init__(self, actors: dict[Handle, Actor], base_url: str, local_domain: str) -> None:
        self.actors = actors
        self.base_url = base_url
        self.local_domain = local_domain
        self.mentions: list[int] = []
        self.tags: list[str] = []

    def render(self, line: str) -> str:
        """Escaped text with our links in place of URLs, known mentions and hashtags."""
        out: list[str] = []
        last = 0
        for match in TOKEN.finditer(line):
            piece, end = self._token(match)
            if piece is None:
                continue
            out.append(html.escape(line[last:match.start()]))
            out.append(piece)
            last = end
        out.append(html.escape(line[last:]))
        return "".join(out)

    def _token(self, match: re.Match[str]) -> tuple[str | None, int]:
        if match.group("url"):
            url = trim_url(match.group("url"))
            return _url_html(url), match.start() + len(url)
        if match.group("user"):
            actor = self.actors.get(handle_of(match.group("user"), match.group("host"), self.local_domain))
            if actor is None:
                return None, match.end()
            if actor.id not in self.mentions:
                self.mentions.append(actor.id)
            return _mention_html(actor), match.end()
        tag = match.group("tag")[:MAX_TAG_LENGTH]
        name = tag.lower()[:MAX_TAG_LENGTH]
        if name not in self.tags:
            self.tags.append(name)
        return _hashtag_html(tag, self.base_url), match.end()


def paragraphs(text: str) -> list[list[str]]:
    """Blank lines split paragraphs; single newlines are line breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    return [block.split("\n") for block in blocks]


async def render_text(session: AsyncSession, text: str, base_url: str, local_domain: str) -> RenderedText:
    """The post's HTML, mentioned actor ids and hashtag names (lower-case, as written)."""
    actors = await resolve_mentions(session, mention_handles(text, local_domain))
    renderer = _LineRenderer(actors, base_url, local_domain)
    parts = []
    for block in paragraphs(text):
        parts.append("<p>" + "<br>".join(renderer.render(line) for line in block) + "</p>")
    return RenderedText(sanitize("".join(parts)), renderer.mentions, renderer.tags)
