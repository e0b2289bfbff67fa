"""Read what peers really send into plain values: pure functions over JSON, no database.

Peers differ (each quirk is named where it is handled): `to`/`cc` as a string (bovine) or a list,
`attributedTo` as a string, an object or a list of them (Lemmy, PeerTube), `content` or only
`contentMap` (GoToSocial, Pleroma), `tag` as one object (bovine) or a list, `published` with or
without fractions of a second.

Beyond the text: `attachment` (Document/Image/Video/Audio, `url` as a string, a Link or a list of
them) becomes at most four media; a `Question` carries a poll (`oneOf`/`anyOf` options with
`replies.totalItems`); a Note with a `name`, no content and `inReplyTo` a Question is a poll vote
(Mastodon's shape). Remote media are never downloaded: residents' apps load them from their origin.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from voisinage.models.html import sanitize
from voisinage.models.media import MAX_DESCRIPTION
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC

from .actors import ApParseError, clean_text
from .partners import host_of
from .vocab import NOTE_TYPES, PUBLIC_ALIASES, as_list, get_id, ids, types_of

__all__ = ["ApParseError", "ParsedMedia", "ParsedNote", "ParsedPoll", "media_url", "note_author", "parse_note",
           "parse_poll", "poll_vote_of", "same_host", "visibility_of"]

MAX_CONTENT = 100_000
MAX_URI = 512
MAX_MENTIONS = 100
MAX_ATTACHMENTS = 4  # Mastodon's limit of media per status; more are ignored, as Mastodon does
MAX_MEDIA_URL = 512  # MediaAttachment.remote_url
MAX_DIMENSION = 100_000
MAX_POLL_OPTIONS = 20  # Pleroma/Akkoma allow up to 20; a Question with more carries no poll here
MAX_POLL_TITLE = 500  # longer titles are refused, not cut: a vote names its option by its title
MAX_COUNT = 2**31 - 1
MEDIA_TYPES = {"Document", "Image", "Video", "Audio"}
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,30}/[a-z0-9][a-z0-9!#$&^_.+-]{0,30}")
_BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,64}")


@dataclass
class ParsedMedia:
    """One attachment of a note: a remote URL and what apps need to lay it out."""

    url: str
    kind: str  # Mastodon's type: image, video, audio, unknown
    content_type: str
    description: str
    blurhash: str | None
    width: int
    height: int
    focus: tuple[float, float]


@dataclass
class ParsedPoll:
    """A Question's poll: option titles, the counts its origin announces, when it ends."""

    options: list[str]
    counts: list[int]
    multiple: bool
    expires_at: dt.datetime | None
    closed_at: dt.datetime | None
    voters: int | None


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
    attachments: list[ParsedMedia] = field(default_factory=list)
    poll: ParsedPoll | None = None


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
            if href and len(href) <= MAX_URI and href.startswith(("https://", "http://")) \
                    and href not in mentions and len(mentions) < MAX_MENTIONS:
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
        audience=get_id(note.get("audience")), mentions=mentions, hashtags=hashtags, language=language,
        attachments=parse_attachments(note.get("attachment")),
        poll=parse_poll(note) if "Question" in types_of(note) else None)


# -- attachments --------------------------------------------------------------------------------


def media_url(value: Any) -> str | None:
    """An http(s) URL fit to hand to residents' apps: no other scheme (javascript:, data:), no
    whitespace or control characters, a host, at most MAX_MEDIA_URL characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_MEDIA_URL:
        return None
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c in '"<>\\`' for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return value


def _media_link(value: Any) -> tuple[str, str | None] | None:
    """(URL, mediaType of the link) from `url`: a string, a Link object, or a list of them (PeerTube
    lists one Link per rendition); the first usable one wins."""
    for item in as_list(value)[:10]:
        if isinstance(item, dict):
            found = media_url(item.get("href"))
            media_type = item.get("mediaType")
            if found:
                return found, media_type if isinstance(media_type, str) else None
        elif (found := media_url(item)) is not None:
            return found, None
    return None


def _kind_of_media(content_type: str, types: set[str]) -> str:
    """Mastodon's attachment type from the mediaType, else from the AS type. A GIF stays an image:
    Mastodon makes `gifv` only of files it transcoded itself."""
    if content_type == "image/svg+xml":
        return "unknown"  # as Mastodon: a drawing that can carry scripts is only linked, never shown inline
    family = content_type.split("/", 1)[0]
    if family in ("image", "video", "audio"):
        return family
    for kind in ("Image", "Video", "Audio"):
        if kind in types:
            return kind.lower()
    return "unknown"


def _dimension(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DIMENSION else 0


def _focus(value: Any) -> tuple[float, float]:
    """Mastodon's `focalPoint` [x, y], each in -1..1; (0, 0) otherwise."""
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and -1.0 <= v <= 1.0 for v in value):
        return float(value[0]), float(value[1])
    return 0.0, 0.0


def _content_type(value: Any) -> str:
    found = value.strip().lower() if isinstance(value, str) else ""
    return found if _MIME.fullmatch(found) else ""


def _one_attachment(item: Any) -> ParsedMedia | None:
    if not isinstance(item, dict):
        return None
    types = types_of(item)
    if not types & MEDIA_TYPES:
        # Lemmy attaches an image post's file as a Link with an image mediaType: kept; a Link to an
        # article, a PropertyValue, a Hashtag...: not media.
        if "Link" not in types or _content_type(item.get("mediaType")).split("/")[0] not in ("image", "video", "audio"):
            return None
    link = _media_link(item.get("url")) or _media_link(item.get("href"))
    if link is None:
        return None
    url, link_type = link
    content_type = _content_type(item.get("mediaType")) or _content_type(link_type)
    blurhash = item.get("blurhash")
    # Alt text is `name` (Mastodon, GoToSocial); some peers put it in `summary`.
    description = clean_text(item.get("name"), MAX_DESCRIPTION) or clean_text(item.get("summary"), MAX_DESCRIPTION)
    return ParsedMedia(
        url=url, kind=_kind_of_media(content_type, types), content_type=content_type,
        description=description,
        blurhash=blurhash if isinstance(blurhash, str) and _BLURHASH.fullmatch(blurhash) else None,
        width=_dimension(item.get("width")), height=_dimension(item.get("height")),
        focus=_focus(item.get("focalPoint")))


def parse_attachments(value: Any) -> list[ParsedMedia]:
    """The usable media of a note's `attachment`, at most MAX_ATTACHMENTS; the rest is ignored."""
    found: list[ParsedMedia] = []
    for item in as_list(value):
        media = _one_attachment(item)
        if media is not None:
            found.append(media)
            if len(found) == MAX_ATTACHMENTS:
                break
    return found


# -- polls --------------------------------------------------------------------------------------


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else 0


def _option(item: Any) -> tuple[str, int] | None:
    """(title, votes) of one option: a Note with `name` and `replies.totalItems`."""
    if not isinstance(item, dict):
        return None
    title = clean_text(item.get("name"), MAX_POLL_TITLE + 1)
    if not title or len(title) > MAX_POLL_TITLE:
        return None
    replies = item.get("replies")
    return title, _count(replies.get("totalItems")) if isinstance(replies, dict) else 0


def parse_poll(question: dict[str, Any]) -> ParsedPoll | None:
    """The poll of a Question (`oneOf` single choice, `anyOf` multiple); None when it is unusable
    (fewer than 2 or more than MAX_POLL_OPTIONS options, an option without a usable title)."""
    multiple = "oneOf" not in question and "anyOf" in question
    items = as_list(question.get("anyOf" if multiple else "oneOf"))
    if not 2 <= len(items) <= MAX_POLL_OPTIONS:
        return None
    options = [_option(item) for item in items]
    if any(option is None for option in options):
        return None
    closed = question.get("closed")
    closed_at = _published(closed)
    end = _published(question.get("endTime"))
    if closed is True and closed_at is None:  # some peers say only `closed: true`
        closed_at = end or _published(question.get("published")) or dt.datetime.now(dt.UTC)
    voters = question.get("votersCount")
    return ParsedPoll(options=[o[0] for o in options if o], counts=[o[1] for o in options if o],
                      multiple=multiple, expires_at=end or closed_at, closed_at=closed_at,
                      voters=_count(voters) if voters is not None else None)


def poll_vote_of(note: dict[str, Any]) -> tuple[str, str] | None:
    """(question uri, option title) when a note is a poll vote as Mastodon sends it: a Note with a
    `name`, no content, `inReplyTo` the Question. None for any other note."""
    if "Note" not in types_of(note) or note.get("content") or note.get("contentMap"):
        return None
    question, name = get_id(note.get("inReplyTo")), note.get("name")
    if not question or not isinstance(name, str) or not name or len(name) > MAX_POLL_TITLE:
        return None
    return question, clean_text(name, MAX_POLL_TITLE)


def visibility_of(parsed: ParsedNote, author_followers: str | None, group_followers: dict[str, str]) -> tuple[str, str | None]:
    """(visibility, audience group uri) of an incoming note.

    Public in a known Group's audience when addressed to the group's followers collection (as we and
    Mastodon-shaped peers address a village post), or to the group itself or with `audience` = group
    together with Public or the author's followers (Lemmy); public without a group, or to the
    author's followers -> followers can read it (public with no audience, or private); only actors,
    a Group among them (a message to a village) -> direct. `group_followers` maps the uri of each
    known Group to its followers collection.
    """
    addresses = parsed.addresses
    wide = bool(addresses & PUBLIC_ALIASES) or bool(author_followers and author_followers in addresses)
    for group, followers in group_followers.items():
        if (followers and followers in addresses) or (wide and (group == parsed.audience or group in addresses)):
            return PUBLIC, group
    if addresses & PUBLIC_ALIASES:
        return PUBLIC, None
    if author_followers and author_followers in addresses:
        return PRIVATE, None
    return DIRECT, None
