"""Rows -> Mastodon JSON entities: accounts, statuses, relationships, notifications.

Statuses are rendered in batches (`render_statuses`): one query per kind of relation for a whole page
(authors, boosted originals, mentions, tags, the viewer's favourites and boosts), never one per status.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, cast, func, literal, null, select, type_coerce, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from voisinage.models.actor import ACCOUNT_COLUMNS, ACCOUNT_VERSION, GROUP, Actor
from voisinage.models.audience import Viewer
from voisinage.models.bookmark import Bookmark
from voisinage.models.db import fast
from voisinage.models.follow import ACCEPTED, PENDING, Follow
from voisinage.models.interaction import Favourite
from voisinage.models.media import MediaAttachment
from voisinage.models.notification import Notification
from voisinage.models.oauth import Application
from voisinage.models.pin import Pin
from voisinage.models.poll import Poll, PollVote
from voisinage.models.post import Post, relation_parts

from ..services.media import load_media_for_posts, media_to_api

ROLE_BADGES = {
    "official": ("1", "Service communal", "#2b6cb0"),
    "elected": ("2", "Élu·e", "#6b46c1"),
    "moderator": ("3", "Modération", "#2f855a"),
    "admin": ("4", "Administration", "#c53030"),
}


def iso(moment: dt.datetime | None) -> str | None:
    """Mastodon's timestamps: UTC, milliseconds, `Z` (isoformat is twice as fast as strftime)."""
    if moment is None:
        return None
    if moment.tzinfo is not dt.UTC:
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def iso_date(moment: dt.datetime) -> str:
    """Mastodon shows accounts' creation as a day (midnight UTC)."""
    if moment.tzinfo is not dt.UTC:
        moment = moment.astimezone(dt.UTC)
    return f"{moment.date().isoformat()}T00:00:00.000Z"  # a fifth of strftime's time


def default_image(base_url: str, kind: str) -> str:
    return f"{base_url}/static/{kind}.png"


def _field_to_api(field: dict[str, Any]) -> dict[str, Any]:
    return {"name": field.get("name", ""), "value": field.get("value", ""),
            "verified_at": field.get("verified_at")}


def account_to_api(actor: Actor, base_url: str) -> dict[str, Any]:
    avatar = actor.avatar_url or default_image(base_url, "avatar")
    header = actor.header_url or default_image(base_url, "header")
    roles = []
    if actor.role in ROLE_BADGES:
        role_id, name, color = ROLE_BADGES[actor.role]
        roles.append({"id": role_id, "name": name, "color": color})
    return {
        "id": str(actor.id),
        "username": actor.username,
        "acct": acct_of(actor),
        "display_name": actor.display_name or "",
        "locked": bool(actor.locked),
        "bot": actor.kind in ("Application", "Service"),
        "discoverable": bool(actor.discoverable),
        "indexable": False,
        "group": actor.kind == GROUP,
        "created_at": iso_date(actor.created_at),
        "note": actor.note or "",
        "url": actor.url or actor.uri,
        "uri": actor.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": actor.followers_count,
        "following_count": actor.following_count,
        "statuses_count": actor.statuses_count,
        "last_status_at": actor.last_status_at.date().isoformat() if actor.last_status_at else None,
        "hide_collections": False,
        "noindex": True,
        "emojis": [],
        "roles": roles,
        "fields": [_field_to_api(f) for f in (actor.fields or [])],
    }


def credential_account_to_api(actor: Actor, resident: Any, base_url: str,
                              follow_requests_count: int = 0) -> dict[str, Any]:
    data = account_to_api(actor, base_url)
    data["source"] = {
        "privacy": resident.default_visibility,
        "sensitive": bool(resident.default_sensitive),
        "language": resident.default_language or "",
        "note": actor.note_source or "",
        "fields": [{"name": f.get("name", ""), "value": html.unescape(_strip_tags(f.get("value", ""))),
                    "verified_at": f.get("verified_at")} for f in (actor.fields or [])],
        "follow_requests_count": follow_requests_count,
        "hide_collections": False,
        "discoverable": bool(actor.discoverable),
        "indexable": False,
        "attribution_domains": [],
    }
    role = actor.role or "user"
    data["role"] = {"id": ROLE_BADGES.get(role, ("0",))[0], "name": role, "color": "",
                    "permissions": "0", "highlighted": role in ROLE_BADGES}
    return data


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text)


# A post row's version: its `edited_at` (null until an edit, which sets it), as the database returns it.
_POST_VERSION = type_coerce(Post.edited_at, String).label("version")
# What a Status entity needs of a post row (not `source`, which only edits read), and the version.
STATUS_COLUMNS = (*(c for c in Post.__table__.c if c.name != "source"), _POST_VERSION)
# What a page needs of a post whose rendering is cached (`StatusBatch`): the rest of the row is read only
# for the posts that are not.
STATUS_KEY_COLUMNS = (Post.id, Post.author_id, Post.reblog, Post.reblog_of_id, Post.in_reply_to_id,
                      Post.in_reply_to_account_id, Post.replies_count, Post.reblogs_count, Post.favourites_count,
                      Post.application_id, _POST_VERSION)


def acct_of(actor: Any) -> str:
    """`name` for a local account, `name@domain` for a remote one (Actor objects and rows alike)."""
    return f"{actor.username}@{actor.domain}" if actor.domain else actor.username


def status_rows() -> Any:
    """A SELECT of post rows for rendering; its rows render as Post objects do."""
    return select(*STATUS_COLUMNS)


def status_keys() -> Any:
    """A SELECT of what a page needs of its posts when their renderings are cached (`StatusBatch.load`
    reads the rest for those that are not): for timelines, whose pages are mostly posts read before."""
    return select(*STATUS_KEY_COLUMNS)


_ORIGINAL = aliased(Post, name="originals")
_KEY_NAMES = tuple(column.key for column in STATUS_KEY_COLUMNS)
_Keys = collections.namedtuple("_Keys", _KEY_NAMES)  # type: ignore[misc]  # an original's, as `status_keys()`'s


_AUTHOR = aliased(Actor, name="authors")
_ORIGINAL_AUTHOR = aliased(Actor, name="original_authors")


def status_keys_and_originals() -> Any:
    """`status_keys()` and, in the same rows, the keys of each boost's original (`original_*` columns,
    null for a post that is not a boost), and the versions of the post's and the original's authors
    (`author_version`, `original_author_version`, as `load_accounts` reads them): a home page, mostly
    its villages' announces, reads its originals and asks its authors' versions without statements of
    their own. `StatusBatch.load` finds them there."""
    columns = [getattr(_ORIGINAL, column.key) for column in STATUS_KEY_COLUMNS[:-1]]
    columns.append(type_coerce(_ORIGINAL.edited_at, String))
    originals = [column.label(f"original_{name}") for column, name in zip(columns, _KEY_NAMES, strict=True)]
    versions = (type_coerce(_AUTHOR.updated_at, String).label("author_version"),
                type_coerce(_ORIGINAL_AUTHOR.updated_at, String).label("original_author_version"))
    return (select(*STATUS_KEY_COLUMNS, *originals, *versions).select_from(Post)
            .outerjoin(_ORIGINAL, _ORIGINAL.id == Post.reblog_of_id)
            .outerjoin(_AUTHOR, _AUTHOR.id == Post.author_id)
            .outerjoin(_ORIGINAL_AUTHOR, _ORIGINAL_AUTHOR.id == _ORIGINAL.author_id))


def _originals_in(rows: Sequence[Any]) -> list[Any]:
    """The originals' keys carried by `status_keys_and_originals()` rows (none in other rows)."""
    if not rows or "original_id" not in getattr(rows[0], "_fields", ()):
        return []
    width = len(_KEY_NAMES)
    return [_Keys._make(row[width:2 * width]) for row in rows if row[width] is not None]


def _author_versions_in(rows: Sequence[Any]) -> dict[int, Any]:
    """{actor id: version} of the authors `status_keys_and_originals()` rows carry (none in other rows)."""
    if not rows or "author_version" not in getattr(rows[0], "_fields", ()):
        return {}
    found = {row.author_id: row.author_version for row in rows}
    found.update((row.original_author_id, row.original_author_version) for row in rows
                 if row.original_author_id is not None)
    return found


# The batch's statements are built once (building costs more than running them) with these parameters.
IDS = bindparam("ids", expanding=True)
UNCACHED = bindparam("uncached", expanding=True)
ME = bindparam("me")


@functools.cache
def _statement(name: str) -> Any:
    """A page's relations, run through SQLite's fast read path where there is one (`db.fast`)."""
    return fast(_build_statement(name))


def _build_statement(name: str) -> Any:
    if name == "account_versions":
        return select(Actor.id, ACCOUNT_VERSION).where(Actor.id.in_(IDS))
    if name == "accounts":
        return select(*ACCOUNT_COLUMNS, ACCOUNT_VERSION).where(Actor.id.in_(IDS))
    if name == "posts":
        return status_rows().where(Post.id.in_(IDS))
    if name == "post_keys":
        return status_keys().where(Post.id.in_(IDS))
    if name == "apps":
        return select(Application.id, Application.name, Application.website).where(Application.id.in_(IDS))
    if name == "relations":  # mentions and tags, and which posts have media or a poll
        return union_all(*relation_parts(IDS))
    if name == "marks":  # what the viewer bookmarked, pinned, favourited, boosted
        return union_all(*_mark_parts())
    if name == "relations_and_marks":  # the relations of `uncached`, the marks of `ids`
        return union_all(*relation_parts(UNCACHED), *_mark_parts())
    raise KeyError(name)


def _mark_parts() -> list[Any]:
    no_id, no_text = cast(null(), BigInteger), cast(null(), String)
    return [
        select(literal("b"), Bookmark.post_id, no_id, no_text).where(Bookmark.actor_id == ME,
                                                                      Bookmark.post_id.in_(IDS)),
        select(literal("p"), Pin.post_id, no_id, no_text).where(Pin.actor_id == ME, Pin.post_id.in_(IDS)),
        select(literal("f"), Favourite.post_id, no_id, no_text).where(Favourite.actor_id == ME,
                                                                       Favourite.post_id.in_(IDS)),
        select(literal("r"), Post.reblog_of_id, no_id, no_text).where(Post.author_id == ME,
                                                                       Post.reblog_of_id.in_(IDS)),
    ]


async def _run(session: AsyncSession, name: str, ids: Iterable[int], **values: Any) -> Any:
    """The rows of a prepared statement (a fast one: no ORM objects are made)."""
    return await session.execute(_statement(name), {"ids": list(ids), **values})


async def load_posts(session: AsyncSession, ids: Iterable[int]) -> dict[int, Any]:
    """`status_rows()` rows by id, which render as Post objects do (one query, no ORM objects)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {p.id: p for p in await _run(session, "posts", wanted)}


ACCOUNT_CACHE_SIZE = 2048  # rendered accounts kept, the least recently used dropped first
_ACCOUNTS: collections.OrderedDict[tuple[str, int, Any], dict[str, Any]] = collections.OrderedDict()


async def load_accounts(session: AsyncSession, ids: Iterable[int], base_url: str,
                        changed: Iterable[int] = (), versions: Mapping[int, Any] | None = None
                        ) -> dict[int, dict[str, Any]]:
    """Account entities by id, each rendered once per version of its actor's row and then taken from a
    cache: a timeline page's authors are mostly the same few neighbours, and reading their whole rows
    (dates, profile fields) and rendering them was a sixth of the page. The entities are shared: do not
    change them (`render_accounts` gives copies). One query when all are cached, two otherwise; one
    when those that are not cached are among `changed` (rows the caller knows it changed); none for
    the versions the caller read already (`versions`, {actor id: version}) when all are cached."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found: dict[int, dict[str, Any]] = {}
    stale = sorted(wanted.intersection(changed))
    asked = wanted.difference(stale)
    known = [(i, versions[i]) for i in asked if i in versions] if versions else []
    asked.difference_update(i for i, _ in known)
    for actor_id, version in [*known, *(await _run(session, "account_versions", asked) if asked else ())]:
        rendered = _ACCOUNTS.get((base_url, actor_id, version))
        if rendered is None:
            stale.append(actor_id)
        else:
            _ACCOUNTS.move_to_end((base_url, actor_id, version))
            found[actor_id] = rendered
    if stale:
        for row in await _run(session, "accounts", stale):
            found[row.id] = _remember_account(row, base_url)
    return found


def _remember_account(row: Any, base_url: str) -> dict[str, Any]:
    """The Account entity of a row of ACCOUNT_COLUMNS and ACCOUNT_VERSION, kept in the cache."""
    rendered = _ACCOUNTS[(base_url, row.id, row.version)] = account_to_api(row, base_url)
    while len(_ACCOUNTS) > ACCOUNT_CACHE_SIZE:
        _ACCOUNTS.popitem(last=False)
    return rendered


async def render_accounts(session: AsyncSession, ids: Sequence[int], base_url: str) -> list[dict[str, Any]]:
    """Account entities in the order of `ids` (missing ones left out), copies the caller may add to."""
    accounts = await load_accounts(session, ids, base_url)
    return [dict(accounts[i]) for i in ids if i in accounts]


def remote_media_to_api(media: MediaAttachment) -> dict[str, Any]:
    """A partner's attachment: never downloaded, so every URL is the (sanitised) remote one."""
    meta: dict[str, Any] = {"focus": {"x": media.focus_x, "y": media.focus_y}}
    if media.width and media.height:
        size = {"width": media.width, "height": media.height, "size": f"{media.width}x{media.height}",
                "aspect": media.width / media.height}
        meta.update(original=size, small=dict(size))
    return {"id": str(media.id), "type": media.kind, "url": media.remote_url, "preview_url": media.remote_url,
            "remote_url": media.remote_url, "preview_remote_url": None, "text_url": None, "meta": meta,
            "description": media.description or None, "blurhash": media.blurhash}


@dataclasses.dataclass(slots=True)
class _Rendered:
    """A post's rendering that depends neither on the reader nor on its counts (see `StatusBatch`)."""

    data: dict[str, Any]
    mentions: list[int]  # the mentioned actors, rendered from their accounts at each reading
    poll: bool  # whether it has a poll, rendered at each reading (votes)


_NO_VERSION = object()  # Post objects have no version: they are rendered afresh
STATUS_CACHE_SIZE = 4096  # posts' renderings kept, the least recently used dropped first
_STATUSES: collections.OrderedDict[tuple[str, int, Any, int | None], _Rendered] = collections.OrderedDict()


def _complete(post: Any) -> bool:
    """Whether `post` is a whole row (or a Post), not only its `status_keys()`."""
    return hasattr(post, "content")


class StatusBatch:
    """Everything needed to render a page of statuses for one viewer, loaded in a few queries.

    What a status shows that depends neither on the reader nor on its counts (its text, media, tags,
    application, dates) is rendered once per version of the post's row (`edited_at`, which an edit
    sets) and kept in a per-process cache, as accounts are: a page of posts read before reads their
    keys (`status_keys()`: author, counts, reply links, application, version) and what the reader
    marked, not their whole rows and relations. Only rows with a `version` (`status_rows()`,
    `status_keys()`) are cached; Post objects render afresh. The cached parts are shared: the entities
    rendered are new dicts, but their lists (media, tags) must not be changed."""

    def __init__(self, base_url: str, viewer: Viewer) -> None:
        self.base_url = base_url
        self.viewer = viewer
        self.posts: dict[int, Post] = {}
        self.cached: dict[int, _Rendered] = {}  # by post id, for the posts whose rendering is cached
        self.accounts: dict[int, dict[str, Any]] = {}  # rendered (shared: not to be changed), by actor id
        self.mentions: dict[int, list[int]] = {}
        self.tags: dict[int, list[str]] = {}
        self.favourited: set[int] = set()
        self.reblogged: set[int] = set()
        self.apps: dict[int, Application] = {}
        self.media: dict[int, list[MediaAttachment]] = {}
        self.bookmarked: set[int] = set()
        self.pinned: set[int] = set()
        self.polls: dict[int, Poll] = {}  # by post id
        self.tallies: dict[int, dict[int, int]] = {}  # poll id -> choice -> votes
        self.voters: dict[int, int] = {}  # poll id -> distinct voters
        self.own_votes: dict[int, list[int]] = {}  # poll id -> the viewer's choices
        self.versions: dict[int, Any] = {}  # authors' versions read with the page (`_author_versions_in`)

    async def load(self, session: AsyncSession, posts: Sequence[Any]) -> None:
        """Load a page's relations: Post objects, `status_rows()` or `status_keys()` rows, in a few
        queries whatever the number of posts (the whole rows of keys whose rendering is not cached in
        one of them)."""
        for post in posts:
            self.posts[post.id] = post
        for original in _originals_in(posts):
            self.posts.setdefault(original.id, original)
        self.versions = _author_versions_in(posts)
        missing = {p.reblog_of_id for p in posts if p.reblog_of_id and p.reblog_of_id not in self.posts}
        if missing:
            self.posts.update((p.id, p) for p in await _run(session, "post_keys", missing))
        self._find_cached()
        incomplete = [i for i, p in self.posts.items() if i not in self.cached and not _complete(p)]
        if incomplete:
            self.posts.update(await load_posts(session, incomplete))
        originals = [p.id for p in self.posts.values() if not p.reblog]
        if originals:
            await self._load_relations(session, originals, self.viewer.actor_id)
        await self._load_accounts_and_apps(session)

    def _cache_key(self, post: Any) -> tuple[str, int, Any, int | None] | None:
        """Where a post's rendering is kept: by version, and by application too (a deleted one leaves
        the post without, and no edit); None for a Post object (no version: rendered afresh)."""
        version = getattr(post, "version", _NO_VERSION)
        return None if version is _NO_VERSION else (self.base_url, post.id, version, post.application_id)

    def _find_cached(self) -> None:
        for post_id, post in self.posts.items():
            key = self._cache_key(post)
            rendered = _STATUSES.get(key) if key is not None else None
            if rendered is not None:
                _STATUSES.move_to_end(key)
                self.cached[post_id] = rendered
                if rendered.mentions:
                    self.mentions[post_id] = rendered.mentions

    def _keep(self, post: Any, data: dict[str, Any], mentions: list[int], poll: bool) -> None:
        key = self._cache_key(post)
        if key is not None:
            _STATUSES[key] = _Rendered(dict(data), mentions, poll)
            while len(_STATUSES) > STATUS_CACHE_SIZE:
                _STATUSES.popitem(last=False)

    def add_created(self, post: Post, mentions: Iterable[int], tags: Iterable[str],
                    media: Sequence[MediaAttachment], poll: Poll | None, app: Any, author: Any = None) -> None:
        """A post the viewer has just created, with the relations its creation stored, its application
        (`id`, `name`, `website`; None) and its author's row as the post left it (ACCOUNT_COLUMNS and
        ACCOUNT_VERSION; None): `load_created` then reads only the accounts it lacks, where `load` would
        read the rest back too. Nobody has bookmarked, pinned, favourited, boosted or voted in it yet,
        and its counts are zero."""
        self.posts[post.id] = post
        if author is not None:
            _remember_account(author, self.base_url)
            self.versions[author.id] = author.version
        if app is not None:
            self.apps[app.id] = app
        if mentions:
            self.mentions[post.id] = list(mentions)
        if tags:
            self.tags[post.id] = list(tags)
        if media:
            self.media[post.id] = sorted(media, key=lambda m: m.id)
        if poll is not None:
            self.polls[post.id] = poll

    async def load_created(self, session: AsyncSession) -> None:
        """Load what the posts of `add_created` need besides what their creation stored. Their authors'
        rows changed with them (`statuses_count`): read without asking their version first, unless
        given."""
        await self._load_accounts_and_apps(session, changed={p.author_id for p in self.posts.values()
                                                             if p.author_id not in self.versions})

    async def _load_accounts_and_apps(self, session: AsyncSession, changed: Iterable[int] = ()) -> None:
        actor_ids = {p.author_id for p in self.posts.values()}
        actor_ids.update(a for ids in self.mentions.values() for a in ids)
        self.accounts = await load_accounts(session, actor_ids, self.base_url, changed, self.versions)
        app_ids = {p.application_id for i, p in self.posts.items()
                   if i not in self.cached and p.application_id} - self.apps.keys()
        if app_ids:
            for app in await _run(session, "apps", app_ids):
                self.apps[app.id] = app

    async def _load_relations(self, session: AsyncSession, post_ids: list[int], me: int | None) -> None:
        """Mentions and tags of the page's posts not cached, which of them have media or a poll, and which
        posts the viewer `me` bookmarked, pinned, favourited, boosted, in one query; then the media and
        polls themselves only when there are some (polls of cached posts too: their votes change)."""
        with_media: set[int] = set()
        with_poll = [i for i in post_ids if i in self.cached and self.cached[i].poll]
        marks = {"b": self.bookmarked, "p": self.pinned, "f": self.favourited, "r": self.reblogged}
        uncached = [i for i in post_ids if i not in self.cached]
        if me is None:
            rows = await _run(session, "relations", uncached) if uncached else ()
        elif uncached:
            rows = await _run(session, "relations_and_marks", post_ids, me=me, uncached=uncached)
        else:
            rows = await _run(session, "marks", post_ids, me=me)
        for kind, post_id, actor_id, name in rows:
            if kind == "m":
                self.mentions.setdefault(post_id, []).append(actor_id)
            elif kind == "t":
                self.tags.setdefault(post_id, []).append(name)
            elif kind == "a":
                with_media.add(post_id)
            elif kind == "q":
                with_poll.append(post_id)
            else:
                marks[kind].add(post_id)
        if with_media:
            self.media = await load_media_for_posts(session, sorted(with_media))
        if with_poll:
            await self._load_polls(session, with_poll)

    async def _load_polls(self, session: AsyncSession, post_ids: list[int]) -> None:
        """Polls of the page, their tallies and the viewer's votes: at most three queries."""
        self.polls = {p.post_id: p for p in await session.scalars(select(Poll).where(Poll.post_id.in_(post_ids)))}
        if not self.polls:
            return
        poll_ids = [p.id for p in self.polls.values()]
        for poll_id, choice, votes in await session.execute(
                select(PollVote.poll_id, PollVote.choice, func.count()).where(PollVote.poll_id.in_(poll_ids))
                .group_by(PollVote.poll_id, PollVote.choice)):
            self.tallies.setdefault(poll_id, {})[choice] = votes
        for poll_id, voters in await session.execute(
                select(PollVote.poll_id, func.count(func.distinct(PollVote.actor_id)))
                .where(PollVote.poll_id.in_(poll_ids)).group_by(PollVote.poll_id)):
            self.voters[poll_id] = voters
        if self.viewer.actor_id is not None:
            for poll_id, choice in await session.execute(
                    select(PollVote.poll_id, PollVote.choice).where(
                        PollVote.poll_id.in_(poll_ids), PollVote.actor_id == self.viewer.actor_id)):
                self.own_votes.setdefault(poll_id, []).append(choice)

    def render_poll(self, poll: Poll) -> dict[str, Any]:
        """Mastodon's Poll entity; with `hide_totals`, option counts are null until the poll ends. A
        partner's poll without an end has `expires_at` null."""
        expired = poll.ended(dt.datetime.now(dt.UTC))
        tally = self.tallies.get(poll.id, {})
        voters: int | None = self.voters.get(poll.id, 0)
        if poll.remote_counts is not None:  # a partner's poll: the counts its origin announces
            tally = dict(enumerate(poll.remote_counts))
            voters = poll.remote_voters if poll.remote_voters is not None or poll.multiple else sum(tally.values())
        show = expired or not poll.hide_totals
        own = sorted(self.own_votes.get(poll.id, []))
        return {
            "id": str(poll.id),
            "expires_at": iso(poll.expires_at),
            "expired": expired,
            "multiple": bool(poll.multiple),
            "votes_count": sum(tally.values()),
            "voters_count": voters,
            "options": [{"title": title, "votes_count": tally.get(i, 0) if show else None}
                        for i, title in enumerate(poll.options)],
            "emojis": [],
            "voted": bool(own) or self.viewer.actor_id == poll.author_id,
            "own_votes": own,
        }

    def render(self, post: Post) -> dict[str, Any]:
        post = self.posts.get(post.id, post)  # its whole row, where `load` read it
        if post.reblog_of_id is not None:
            original = self.posts.get(post.reblog_of_id)
            inner = self._render_original(original) if original is not None else None
            data = self._shell(post)
            data["reblog"] = inner
            if inner is not None:
                for key in ("favourited", "reblogged", "bookmarked", "muted", "pinned"):
                    data[key] = inner[key]
            return data
        return self._render_original(post)

    def _shell(self, post: Post) -> dict[str, Any]:
        """A boost's own entity (its original goes in `reblog`), or the start of an original's."""
        rendered = self.cached.get(post.id)
        if rendered is not None:
            data = dict(rendered.data)
        else:
            data = {
                "id": str(post.id),
                "uri": post.uri,
                "url": post.url or post.uri,
                "created_at": iso(post.created_at),
                "account": None,
                "content": "",
                "visibility": post.visibility,
                "sensitive": False,
                "spoiler_text": "",
                "media_attachments": [],
                "application": None,
                "mentions": [],
                "tags": [],
                "emojis": [],
                "reblogs_count": 0,
                "favourites_count": 0,
                "replies_count": 0,
                "in_reply_to_id": None,
                "in_reply_to_account_id": None,
                "reblog": None,
                "poll": None,
                "card": None,
                "language": None,
                "text": None,
                "edited_at": None,
                "favourited": False,
                "reblogged": False,
                "muted": False,
                "bookmarked": False,
                "pinned": False,
                "filtered": [],
            }
            if post.reblog_of_id is not None:
                self._keep(post, data, [], False)
        data["account"] = self.accounts[post.author_id]
        data["filtered"] = []
        return data

    def _render_original(self, post: Post) -> dict[str, Any]:
        data = self._shell(post)
        if post.id not in self.cached:
            app = self.apps.get(post.application_id) if post.application_id else None
            data.update({
                "content": post.content,
                "sensitive": bool(post.sensitive),
                "spoiler_text": post.spoiler_text or "",
                "application": {"name": app.name, "website": app.website} if app else None,
                "tags": [{"name": name, "url": f"{self.base_url}/tags/{name}"}
                         for name in sorted(self.tags.get(post.id, []))],
                "language": post.language,
                "edited_at": iso(post.edited_at),
                "media_attachments": [media_to_api(m, self.base_url) if m.remote_url is None
                                      else remote_media_to_api(m) for m in self.media.get(post.id, [])],
            })
            self._keep(post, data, sorted(self.mentions.get(post.id, [])), post.id in self.polls)
        mentions = []
        for actor_id in sorted(self.mentions.get(post.id, [])):  # by id: the same order on either engine
            account = self.accounts.get(actor_id)
            if account is not None:
                mentions.append({"id": account["id"], "username": account["username"], "acct": account["acct"],
                                 "url": account["url"]})
        post_id = post.id
        data.update({
            "mentions": mentions,
            "reblogs_count": post.reblogs_count,
            "favourites_count": post.favourites_count,
            "replies_count": post.replies_count,
            "in_reply_to_id": str(post.in_reply_to_id) if post.in_reply_to_id else None,
            "in_reply_to_account_id": str(post.in_reply_to_account_id) if post.in_reply_to_account_id else None,
            "favourited": post_id in self.favourited,
            "reblogged": post_id in self.reblogged,
            "bookmarked": post_id in self.bookmarked,
            "pinned": post_id in self.pinned,
            "poll": self.render_poll(self.polls[post_id]) if post_id in self.polls else None,
        })
        return data


async def render_statuses(session: AsyncSession, posts: Sequence[Post], viewer: Viewer,
                          base_url: str) -> list[dict[str, Any]]:
    batch = StatusBatch(base_url, viewer)
    await batch.load(session, posts)
    return [batch.render(p) for p in posts]


async def render_status(session: AsyncSession, post: Post, viewer: Viewer, base_url: str) -> dict[str, Any]:
    return (await render_statuses(session, [post], viewer, base_url))[0]


async def relationships_to_api(session: AsyncSession, me: int, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Relationship entities for `me` and each of `ids`, in the order asked, in a few queries."""
    if not ids:
        return []
    outgoing = {f.target_id: f for f in await session.scalars(
        select(Follow).where(Follow.follower_id == me, Follow.target_id.in_(ids)))}
    incoming = {f.follower_id: f for f in await session.scalars(
        select(Follow).where(Follow.target_id == me, Follow.follower_id.in_(ids)))}
    from voisinage.models.audience import active_mutes
    from voisinage.models.mute_block import Block, Mute
    blocking = set(await session.scalars(select(Block.target_id).where(Block.actor_id == me, Block.target_id.in_(ids))))
    blocked_by = set(await session.scalars(select(Block.actor_id).where(Block.target_id == me, Block.actor_id.in_(ids))))
    muting = {m.target_id: m for m in await session.scalars(select(Mute).where(
        Mute.actor_id == me, Mute.target_id.in_(active_mutes(me)), Mute.target_id.in_(ids)))}
    out = []
    for target in ids:
        mine = outgoing.get(target)
        theirs = incoming.get(target)
        out.append({
            "id": str(target),
            "following": bool(mine and mine.state == ACCEPTED),
            "showing_reblogs": bool(mine.show_reblogs) if mine else False,
            "notifying": bool(mine.notify) if mine else False,
            "languages": None,
            "followed_by": bool(theirs and theirs.state == ACCEPTED),
            "blocking": target in blocking,
            "blocked_by": target in blocked_by,
            "muting": target in muting,
            "muting_notifications": bool(target in muting and muting[target].notifications),
            "requested": bool(mine and mine.state == PENDING),
            "requested_by": bool(theirs and theirs.state == PENDING),
            "domain_blocking": False,
            "endorsed": False,
            "note": "",
        })
    return out


async def render_notifications(session: AsyncSession, notes: Sequence[Notification], viewer: Viewer,
                               base_url: str) -> list[dict[str, Any]]:
    post_ids = {n.post_id for n in notes if n.post_id}
    posts = list(await _run(session, "post_keys", post_ids)) if post_ids else []
    batch = StatusBatch(base_url, viewer)
    await batch.load(session, posts)
    by_id = {p.id: p for p in posts}
    accounts = await load_accounts(session, {n.from_actor_id for n in notes} - set(batch.accounts), base_url)
    accounts.update(batch.accounts)
    from .reports import reports_to_api  # reports renders accounts with this module

    reports = await reports_to_api(session, [n.report_id for n in notes if n.kind == "admin.report"], base_url)
    out = []
    for note in notes:
        account = accounts.get(note.from_actor_id)
        if account is None:
            continue
        post = by_id.get(note.post_id) if note.post_id else None
        entity = {
            "id": str(note.id),
            "type": note.kind,
            "created_at": iso(note.created_at),
            "group_key": f"ungrouped-{note.id}",
            "account": account,
            "status": batch.render(post) if post is not None else None,
        }
        if note.kind == "admin.report":
            entity["report"] = reports.get(note.report_id)
        out.append(entity)
    return out
