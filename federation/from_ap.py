"""Read what peers really send into plain values: pure functions over JSON, no database.

Peers differ (each quirk is named where it is handled): `to`/`cc` as a string (bovine) or a list,
`attributedTo` as a string, an object or a list of them (Lemmy, PeerTube), `content` or only
`contentMap` (GoToSocial, Pleroma), `tag` as one object (bovine) or a list, `published` with or
without fractions of a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from voisinage.models.html import sanitize
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC

from .actors import ApParseError
from .partners import host_of
from .vocab import NOTE_TYPES, PUBLIC_ALIASES, as_list, get_id, ids, types_of

__all__ = ["ApParseError", "ParsedNote", "note_author", "parse_note", "same_host", "visibility_of"]

MAX_CONTENT = 100_000
MAX_URI = 512


@dataclass
class ParsedNote:
    """The parts of a Note we store."""

    uri: str
    author_uri: str
    url: str | None
    content: str
    spoiler_text: str
    sensitive: bool
    published: dt.datetime | None
    in_reply_to_uri: str | None
    addresses: set[str] = field(default_factory=set)
    audience: str | None = None
    mentions: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    language: str | None = None


def same_host(a: str, b: str) -> bool:
    """Whether two URLs are on the same host[:port] (compared exactly, after normalisation)."""
    try:
        return host_of(a) == host_of(b)
    except ValueError:
        return False


def _uri(value: Any, what: str) -> str:
    found = get_id(value)
    if not found or len(found) > MAX_URI or not found.startswith(("https://", "http://")):
        raise ApParseError(f"{what} is missing or not a URL")
    return found


def note_author(note: dict[str, Any]) -> str:
    """The author of a Note. Lemmy and PeerTube send a list with the Person and the Group/Channel:
    the Person is the author."""
    candidates = as_list(note.get("attributedTo"))
    for candidate in candidates:
        if isinstance(candidate, dict) and "Person" in types_of(candidate):
            return _uri(candidate, "attributedTo")
    if not candidates:
        raise ApParseError("note has no attributedTo")
    return _uri(candidates[0], "attributedTo")


def _content(note: dict[str, Any]) -> tuple[str, str | None]:
    """(HTML, language). GoToSocial and Pleroma may send only `contentMap` {lang: html}."""
    content = note.get("content")
    content_map = note.get("contentMap")
    language = None
    if isinstance(content_map, dict) and content_map:
        language, mapped = next(iter(content_map.items()))
        if not isinstance(content, str):
            content = mapped
    if not isinstance(content, str):
        content = ""
    lang = language if isinstance(language, str) and len(language) <= 8 else None
    return content[:MAX_CONTENT], lang


def _published(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _tags(note: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(mentioned actor uris, hashtag names); bovine sends `tag` as one object."""
    mentions: list[str] = []
    hashtags: list[str] = []
    for tag in as_list(note.get("tag")):
        if not isinstance(tag, dict):
            continue
        kinds = types_of(tag)
        if "Mention" in kinds:
            href = get_id(tag.get("href"))
            if href:
                mentions.append(href)
        elif "Hashtag" in kinds and isinstance(tag.get("name"), str):
            hashtags.append(tag["name"].lstrip("#").lower()[:100])
    return mentions, hashtags


def parse_note(note: Any) -> ParsedNote:
    """A Note (or Article, Page, Question) as plain values; raises ApParseError when unusable.

    Mastodon `trustworthy_attribution?`: the author must be on the same host as the note's id.
    """
    if not isinstance(note, dict) or not types_of(note) & NOTE_TYPES:
        raise ApParseError("object is not a Note")
    uri = _uri(note.get("id"), "note id")
    author = note_author(note)
    if not same_host(uri, author):
        raise ApParseError("note's attributedTo is on another host than its id")
    content, language = _content(note)
    mentions, hashtags = _tags(note)
    summary = note.get("summary")
    addresses = set()
    for key in ("to", "cc", "bto", "bcc"):
        addresses.update(ids(note.get(key)))
    url = get_id(note.get("url")) if not isinstance(note.get("url"), list) else get_id(note["url"][0])
    return ParsedNote(
        uri=uri, author_uri=author, url=url if url and len(url) <= MAX_URI else None,
        content=sanitize(content), spoiler_text=summary[:1000] if isinstance(summary, str) else "",
        sensitive=note.get("sensitive") is True, published=_published(note.get("published")),
        in_reply_to_uri=get_id(note.get("inReplyTo")), addresses=addresses,
        audience=get_id(note.get("audience")), mentions=mentions, hashtags=hashtags, language=language)


def visibility_of(parsed: ParsedNote, author_followers: str | None, group_followers: dict[str, str]) -> tuple[str, str | None]:
    """(visibility, audience group uri) of an incoming note.

    Addressed to a known Group (its followers collection, itself, or `audience`) -> public in that
    group's audience; public without a group, or to the author's followers -> followers can read it
    (public with no audience, or private); only actors -> direct. `group_followers` maps the uri of
    each known Group to its followers collection.
    """
    addresses = parsed.addresses
    for group, followers in group_followers.items():
        if group == parsed.audience or group in addresses or (followers and followers in addresses):
            return PUBLIC, group
    if addresses & PUBLIC_ALIASES:
        return PUBLIC, None
    if author_followers and author_followers in addresses:
        return PRIVATE, None
    return DIRECT, None
