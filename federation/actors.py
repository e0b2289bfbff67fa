"""Remote actors: fetch (signed, partners only), parse what peers really send, store, and find keys.

Every fetch is signed by our instance actor (partners may run authorized fetch) and goes only to
partner hosts: the allow-list is checked before any request. A fetched document must carry the id
it was fetched from, an actor type and an inbox; everything else is optional, since peers differ:

* Mastodon: `publicKey` embedded with id `<actor>#main-key`, `endpoints.sharedInbox`, `icon`/`image`
  as Image objects, `manuallyApprovesFollowers`.
* GoToSocial: keyId `<actor>/main-key` (a path, not a fragment), served as its own document.
* bovine: opaque ids (`/endpoints/<token>`), keyId `#serverKey`, no followers, no shared inbox.
* Lemmy: communities are `Group` actors with `attributedTo`/`moderators`, `endpoints.sharedInbox`.

Profiles: `name` is plain text (custom emoji shortcodes such as `:blobcat:` stay text), `summary` is
HTML cleaned by the one allow-list, and `attachment` PropertyValues become the account's fields
(name plain text, value cleaned HTML).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import ACTOR_ROW_BY_URI, APPLICATION, GROUP, PERSON, SERVICE, Actor
from voisinage.models.db import get_fast, load_fast
from voisinage.models.html import sanitize
from voisinage.models.ids import new_id
from voisinage.models.instance import normalize_host

from .context import FederationContext
from .keys import KeyFormatError, load_public, multikey_to_public
from .local_keys import get_instance_actor, signer_for
from .partners import host_of, is_partner
from .signatures import SignatureError, verify_request
from .vocab import ACTOR_TYPES, as_list, get_id, types_of
from .webfinger import lookup_actor_uri

if TYPE_CHECKING:
    from aiohttp import web

    from .keys import PublicKey

__all__ = [
    "ApParseError",
    "NotPartner",
    "RemoteActorFields",
    "Signer",
    "UnknownActor",
    "check_request_signature",
    "clean_text",
    "get_remote_actor",
    "parse_actor",
    "proof_key_for",
    "public_key_for",
    "verified_key_owner",
    "resolve_handle",
]

MAX_DISPLAY_NAME = 200
MAX_USERNAME = 64
MAX_NOTE = 20_000
MAX_URL = 512
MAX_FIELDS = 20  # remote profile fields kept (Pleroma, GoToSocial send more than Mastodon's 4)
MAX_FIELD_TEXT = 2047  # Mastodon's Account::Field limit for remote accounts
# PropertyValue as peers write it: compacted, or with the schema.org IRI when their context does not
# map it (JSON-LD processors that expand the term).
PROPERTY_VALUE = {"PropertyValue", "schema:PropertyValue", "http://schema.org#PropertyValue",
                  "http://schema.org/PropertyValue", "https://schema.org/PropertyValue"}
_VALUE_KEYS = ("value", "schema:value", "http://schema.org#value", "http://schema.org/value")
_CONTROL = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# Keyed by verificationMethod id: Ed25519 keys from actors' `assertionMethod` (FEP-521a).
_PROOF_PREFIX = "proof:"


class Signer(Protocol):
    """What accepting an inbox activity reads of its signer: an Actor, or a row of
    `inbox.partner_signature`."""

    @property
    def id(self) -> int: ...
    @property
    def uri(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def local(self) -> bool: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def suspended_at(self) -> dt.datetime | None: ...


class ApParseError(Exception):
    """A document from a peer is not something we can use (missing id, type, inbox...)."""


class NotPartner(Exception):
    """The URL is on a host that is not on our allow-list: no request was made."""


class UnknownActor(LookupError):
    """No such local actor, or a handle that WebFinger does not know."""


class NeedsFetch(Exception):
    """The key is not known here (or did not verify): only a fetch from its owner can tell."""


@dataclass
class RemoteActorFields:
    """What we keep of a remote actor document."""

    uri: str
    kind: str
    username: str
    inbox_uri: str
    shared_inbox_uri: str | None
    outbox_uri: str | None
    followers_uri: str | None
    url: str | None
    display_name: str
    note: str
    avatar_url: str | None
    header_url: str | None
    locked: bool
    discoverable: bool
    bot: bool
    public_key_pem: str | None
    key_id: str | None
    multikeys: dict[str, str]  # verificationMethod id -> publicKeyMultibase
    fields: list[dict[str, Any]]  # {"name": text, "value": cleaned HTML, "verified_at": None}


# -- parsing ----------------------------------------------------------------------------------


def _url_or_none(value: Any) -> str | None:
    """An http(s) URL from a string, a Link/Image object, or a list of those (first usable)."""
    for item in as_list(value):
        if isinstance(item, dict):
            # Image objects carry `url`; Link objects carry `href` (Mastodon, GoToSocial, Lemmy).
            found = _url_or_none(item.get("url")) or _url_or_none(item.get("href"))
        elif isinstance(item, str):
            found = item if item.startswith(("https://", "http://")) and len(item) <= MAX_URL else None
        else:
            found = None
        if found:
            return found
    return None


def clean_text(value: Any, limit: int) -> str:
    """Plain text from a peer: control characters (NUL included, which PostgreSQL refuses) removed,
    stripped, at most `limit` characters; "" for anything but a string."""
    if not isinstance(value, str):
        return ""
    return value[:limit * 2].translate(_CONTROL).strip()[:limit]


def _text(value: Any, limit: int) -> str:
    """One line of plain text (display names): line breaks and tabs become spaces."""
    return " ".join(clean_text(value, limit * 2).split())[:limit] if isinstance(value, str) else ""


def _fields_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The profile fields: `attachment` PropertyValues (Mastodon, GoToSocial, Akkoma), at most MAX_FIELDS."""
    found: list[dict[str, Any]] = []
    for item in as_list(doc.get("attachment")):
        if not isinstance(item, dict) or not types_of(item) & PROPERTY_VALUE:
            continue
        name = _text(item.get("name"), MAX_FIELD_TEXT)
        value = next((item[k] for k in _VALUE_KEYS if isinstance(item.get(k), str)), None)
        if not name or not isinstance(value, str):
            continue
        found.append({"name": name, "value": sanitize(value.translate(_CONTROL)[:MAX_FIELD_TEXT]),
                      "verified_at": None})
        if len(found) == MAX_FIELDS:
            break
    return found


def _kind_of(doc: dict[str, Any]) -> str:
    found = types_of(doc) & ACTOR_TYPES
    if not found:
        raise ApParseError(f"not an actor type: {sorted(types_of(doc))[:3]}")
    for kind in (GROUP, PERSON, APPLICATION, SERVICE):
        if kind in found:
            return kind
    return PERSON  # Organization is shown as a person


def _username_of(doc: dict[str, Any], uri: str) -> str:
    """preferredUsername, or the last path segment of the id (bovine-like opaque ids still work)."""
    name = doc.get("preferredUsername")
    if isinstance(name, str) and _valid_username(name.strip()):
        return name.strip()
    segment = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    if _valid_username(segment):
        return segment
    raise ApParseError("actor has no usable preferredUsername")


def _valid_username(name: str) -> bool:
    return 0 < len(name) <= MAX_USERNAME and not any(c in name for c in "@/ \t\r\n")


def _public_key_of(doc: dict[str, Any], uri: str) -> tuple[str | None, str | None]:
    """(publicKeyPem, key id) of the key owned by the actor; publicKey may be a list (Hubzilla)."""
    for key in as_list(doc.get("publicKey")):
        if not isinstance(key, dict):
            continue
        owner = get_id(key.get("owner")) or uri  # some peers omit owner on embedded keys
        pem, key_id = key.get("publicKeyPem"), get_id(key.get("id"))
        if owner == uri and isinstance(pem, str) and key_id:
            return pem, key_id
    return None, None


def _multikeys_of(doc: dict[str, Any], uri: str) -> dict[str, str]:
    """FEP-521a Ed25519 keys from `assertionMethod` controlled by the actor."""
    found: dict[str, str] = {}
    for method in as_list(doc.get("assertionMethod")):
        if not isinstance(method, dict) or "Multikey" not in types_of(method):
            continue
        method_id, value = get_id(method.get("id")), method.get("publicKeyMultibase")
        controller = get_id(method.get("controller")) or uri
        same_host = method_id is not None and host_of_or_none(method_id) == host_of_or_none(uri)
        if method_id and isinstance(value, str) and controller == uri and same_host:
            found[method_id] = value
    return found


def host_of_or_none(url: str) -> str | None:
    """`partners.host_of`, or None for anything that is not an http(s) URL."""
    try:
        return host_of(url)
    except ValueError:
        return None


def _same_host_or_none(value: Any, uri: str) -> str | None:
    """A collection or inbox URL, kept only when it is on the actor's own host."""
    found = get_id(value)
    if found is None or len(found) > MAX_URL or host_of_or_none(found) != host_of_or_none(uri):
        return None
    return found


def parse_actor(doc: dict[str, Any], uri: str) -> RemoteActorFields:
    """Read an actor document fetched from `uri`. Raises ApParseError."""
    if doc.get("id") != uri:
        raise ApParseError("actor id is not the URL it was fetched from")
    kind = _kind_of(doc)
    inbox = _same_host_or_none(doc.get("inbox"), uri)
    if inbox is None:
        raise ApParseError("actor has no inbox on its own host")
    raw_endpoints = doc.get("endpoints")
    endpoints: dict[str, Any] = raw_endpoints if isinstance(raw_endpoints, dict) else {}
    pem, key_id = _public_key_of(doc, uri)
    locked = doc.get("manuallyApprovesFollowers")
    discoverable = doc.get("discoverable")
    return RemoteActorFields(
        uri=uri, kind=kind, username=_username_of(doc, uri), inbox_uri=inbox,
        shared_inbox_uri=_same_host_or_none(endpoints.get("sharedInbox"), uri),
        outbox_uri=_same_host_or_none(doc.get("outbox"), uri),
        followers_uri=_same_host_or_none(doc.get("followers"), uri),
        url=_url_or_none(doc.get("url")),
        display_name=_text(doc.get("name"), MAX_DISPLAY_NAME),
        note=sanitize(clean_text(doc.get("summary"), MAX_NOTE)),
        avatar_url=_url_or_none(doc.get("icon")), header_url=_url_or_none(doc.get("image")),
        locked=locked is True,
        discoverable=discoverable is not False,
        bot=kind in (SERVICE, APPLICATION),
        public_key_pem=pem, key_id=key_id, multikeys=_multikeys_of(doc, uri), fields=_fields_of(doc),
    )


# -- storing ----------------------------------------------------------------------------------


def _apply(actor: Actor, fields: RemoteActorFields, domain: str, now: dt.datetime) -> None:
    actor.uri, actor.domain, actor.kind, actor.username = fields.uri, domain, fields.kind, fields.username
    actor.inbox_uri, actor.shared_inbox_uri = fields.inbox_uri, fields.shared_inbox_uri
    actor.outbox_uri, actor.followers_uri, actor.url = fields.outbox_uri, fields.followers_uri, fields.url
    actor.display_name, actor.note, actor.fields = fields.display_name, fields.note, fields.fields
    actor.avatar_url, actor.header_url = fields.avatar_url, fields.header_url
    actor.locked, actor.discoverable, actor.bot = fields.locked, fields.discoverable, fields.bot
    actor.public_key_pem, actor.key_id = fields.public_key_pem, fields.key_id
    actor.ed25519_public_multikey = next(iter(fields.multikeys.values()), None)
    actor.fetched_at = now


async def _store(session: AsyncSession, ctx: FederationContext, fields: RemoteActorFields) -> Actor:
    domain = host_of(fields.uri)
    now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
    actor = await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": fields.uri})
    clash = await session.scalar(select(Actor).where(
        func.lower(Actor.username) == fields.username.lower(), Actor.domain == domain))
    if clash is not None and clash is not actor:
        raise ApParseError(f"{fields.username}@{domain} is already another actor")
    if actor is not None:
        _apply(actor, fields, domain, now)
        await session.flush()
        return actor
    try:
        async with session.begin_nested():  # the same new actor stored by a concurrent request
            actor = Actor(id=new_id(), fields=[], note_source="")
            _apply(actor, fields, domain, now)
            session.add(actor)
    except IntegrityError:
        actor = await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": fields.uri})
        if actor is None:
            raise ApParseError(f"{fields.username}@{domain} clashes with another actor") from None
        _apply(actor, fields, domain, now)
        await session.flush()
    return actor


def _remember_keys(ctx: FederationContext, actor: Actor, fields: RemoteActorFields) -> None:
    """Drop stale cached keys of this actor and remember its Ed25519 proof keys."""
    for cache_key in [k for k, v in ctx.key_cache.items() if isinstance(v, tuple) and v[0] == actor.id]:
        del ctx.key_cache[cache_key]
    for method_id, value in fields.multikeys.items():
        ctx.key_cache[_PROOF_PREFIX + method_id] = (actor.id, value)


# -- fetching ---------------------------------------------------------------------------------


async def _require_partner(session: AsyncSession, url: str) -> str:
    try:
        host = host_of(url)
    except ValueError as exc:
        raise ApParseError(str(exc)) from None
    if not await is_partner(session, host):
        raise NotPartner(f"{host} is not a partner instance")
    return host


async def _local_actor(session: AsyncSession, uri: str) -> Actor:
    actor = await session.scalar(select(Actor).where(Actor.uri == uri, Actor.domain == ""))
    if actor is None:
        raise UnknownActor(f"no local actor {uri[:200]}")
    return actor


async def _signed_get(ctx: FederationContext, session: AsyncSession, url: str, *, check_id: bool = True
                      ) -> tuple[str, dict[str, Any]]:
    instance = await get_instance_actor(session, ctx)
    return await ctx.transport.get_json(url, sign=signer_for(instance), check_id=check_id)


async def get_remote_actor(ctx: FederationContext, session: AsyncSession, uri: str, *,
                           refresh: bool = False, loaded: Actor | None = None, loaded_host_is_partner: bool = False
                           ) -> Actor:
    """The actor at `uri`: the stored row, or fetched (signed by our instance actor) and stored.
    `loaded` is a stored actor the caller already has (an activity's signer), used when it is the one
    at `uri` instead of reading it again; the partner check is made all the same, unless
    `loaded_host_is_partner` says the caller found its host a partner in this transaction.

    Our own URLs are looked up locally, never fetched. Raises NotPartner (before any request),
    FetchError (transport), ApParseError (unusable document), UnknownActor (unknown local URL).
    """
    uri = uri.split("#", 1)[0]
    if ctx.is_local_url(uri):
        return await _local_actor(session, uri)
    if loaded is not None and loaded.uri == uri and loaded.domain:
        if not loaded_host_is_partner:
            await _require_partner(session, uri)
        actor: Actor | None = loaded
    else:
        await _require_partner(session, uri)
        actor = await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": uri})
    if actor is not None and not refresh:
        return actor
    _, doc = await _signed_get(ctx, session, uri)
    fields = parse_actor(doc, uri)
    actor = await _store(session, ctx, fields)
    _remember_keys(ctx, actor, fields)
    return actor


def _load_key(actor: Actor) -> PublicKey:
    if not actor.public_key_pem:
        raise ApParseError(f"actor {actor.uri[:200]} publishes no public key")
    try:
        return load_public(actor.public_key_pem)
    except KeyFormatError as exc:
        raise ApParseError(f"unusable public key: {exc}") from None


async def _owner_uri_of_key(ctx: FederationContext, session: AsyncSession, key_id: str) -> str:
    """The actor that owns `key_id`. A fragment key belongs to the document before the fragment;
    a key with its own URL (GoToSocial `/main-key`) is fetched to read its `owner`."""
    if "#" in key_id:
        return key_id.split("#", 1)[0]
    _, doc = await _signed_get(ctx, session, key_id, check_id=False)
    if types_of(doc) & ACTOR_TYPES:
        owner = get_id(doc.get("id"))
    else:
        owner = get_id(doc.get("owner"))
    if owner is None:
        raise ApParseError("key document names no owner")
    return owner


async def _fetch_key_owner(ctx: FederationContext, session: AsyncSession, key_id: str) -> Actor:
    """Fetch the owner of `key_id` afresh; its own document must publish that key."""
    owner_uri = await _owner_uri_of_key(ctx, session, key_id)
    if host_of_or_none(owner_uri) != host_of_or_none(key_id):
        raise ApParseError("key owner is on another host")
    actor = await get_remote_actor(ctx, session, owner_uri, refresh=True)
    if actor.key_id != key_id:
        raise ApParseError("the owner's document does not publish this key")
    return actor


async def public_key_for(ctx: FederationContext, session: AsyncSession, key_id: str, *,
                         refresh: bool = False, fetch: bool = True) -> tuple[Actor, Any]:
    """(owner actor, loaded public key) for a signature's keyId; cached in ctx.key_cache.

    The partner check comes first: a non-partner keyId raises NotPartner without any lookup.
    `refresh=True` refetches the owner's document (key rotation). Raises NotPartner, FetchError,
    ApParseError, UnknownActor; with `fetch=False`, NeedsFetch instead of fetching.
    """
    if ctx.is_local_url(key_id):
        actor = await session.scalar(select(Actor).where(Actor.key_id == key_id, Actor.domain == ""))
        if actor is None:
            raise UnknownActor(f"no local key {key_id[:200]}")
        return actor, _load_key(actor)
    await _require_partner(session, key_id)
    cached = None if refresh else ctx.key_cache.get(key_id)
    if cached is not None:
        actor = await get_fast(session, Actor, cached[0])
        if actor is not None and actor.key_id == key_id:
            return actor, cached[1]
    actor = None if refresh else await session.scalar(
        select(Actor).where(Actor.key_id == key_id, Actor.domain != ""))
    if actor is None or not actor.public_key_pem:
        if not fetch:
            raise NeedsFetch(key_id)
        actor = await _fetch_key_owner(ctx, session, key_id)
    key = _load_key(actor)
    ctx.key_cache[key_id] = (actor.id, key)
    return actor, key


KEY_REFETCH_EVERY = 60.0  # seconds: a key whose signature failed is fetched again at most this often


def may_refetch_key(ctx: FederationContext, key_id: str) -> bool:
    """Whether a partner's key may be fetched again after a failed verification: once a minute per
    keyId, so that anyone sending bad signatures in a partner's name cannot make us hammer it."""
    mark = f"refetched:{key_id}"
    now = ctx.clock()
    last = ctx.key_cache.get(mark)
    if isinstance(last, float) and 0 <= now - last < KEY_REFETCH_EVERY:
        return False
    ctx.key_cache[mark] = float(now)
    return True


def check_request_signature(ctx: FederationContext, request: web.Request, body: bytes, key: Any) -> None:
    """`signatures.verify_request` of a request made to us: its raw path, our domain as its Host, the
    context's clock. Raises SignatureError."""
    verify_request(request.method, request.raw_path, request.headers, body, key,
                   now=dt.datetime.fromtimestamp(ctx.clock(), dt.UTC), scheme=ctx.scheme, expected_host=ctx.domain)


async def verified_key_owner(ctx: FederationContext, session: AsyncSession, key_id: str, request: web.Request,
                             body: bytes, *, fetch: bool = True) -> Actor:
    """The owner of `key_id` (`public_key_for`) when its key verifies `request` and `body`
    (`check_request_signature`). A remote key that fails is fetched again once, the peer may have
    rotated it, at most once a minute per key (`may_refetch_key`). The inbox and authorized fetch both
    verify this way. Raises what `public_key_for` raises, and SignatureError; with `fetch=False`,
    NeedsFetch where a fetch would be needed (the key is unknown, or did not verify), and nothing is
    written."""
    actor, key = await public_key_for(ctx, session, key_id, fetch=fetch)
    try:
        check_request_signature(ctx, request, body, key)
        return actor
    except SignatureError:
        if actor.local:
            raise
        if not fetch:
            raise NeedsFetch(key_id) from None
        if not may_refetch_key(ctx, key_id):
            raise
    actor, key = await public_key_for(ctx, session, key_id, refresh=True)
    check_request_signature(ctx, request, body, key)
    return actor


async def proof_key_for(ctx: FederationContext, session: AsyncSession, method_id: str, *,
                        refresh: bool = False) -> tuple[Actor, Any]:
    """(controller actor, Ed25519 public key) for an FEP-8b32 proof's verificationMethod.

    The method must be in its controller's `assertionMethod`; the controller is the document
    before the `#`. Partners only. Raises NotPartner, FetchError, ApParseError.
    """
    await _require_partner(session, method_id)
    cached = None if refresh else ctx.key_cache.get(_PROOF_PREFIX + method_id)
    if cached is None:
        await get_remote_actor(ctx, session, method_id.split("#", 1)[0], refresh=True)
        cached = ctx.key_cache.get(_PROOF_PREFIX + method_id)
    if cached is None:
        raise ApParseError("verification method is not one of the actor's assertion keys")
    actor = await get_fast(session, Actor, cached[0])
    if actor is None:
        raise ApParseError("verification method's actor is gone")
    try:
        return actor, multikey_to_public(cached[1])
    except KeyFormatError as exc:
        raise ApParseError(f"unusable Ed25519 key: {exc}") from None


def parse_handle(handle: str) -> tuple[str, str | None]:
    """`@name@host`, `name@host` or `name` -> (name, host or None). Raises ValueError."""
    text = handle.strip()
    text = text.removeprefix("acct:")
    text = text.removeprefix("@")
    name, _, host = text.partition("@")
    if not _valid_username(name) or (host == "" and "@" in text):
        raise ValueError(f"not a handle: {handle[:100]!r}")
    return name, (normalize_host(host) if host else None)


async def resolve_handle(ctx: FederationContext, session: AsyncSession, handle: str) -> Actor:
    """The actor of a handle: local ones from the database, remote ones by WebFinger then fetch.

    Raises ValueError (malformed), UnknownActor, NotPartner, FetchError, ApParseError.
    """
    name, host = parse_handle(handle)
    if host is None or host == ctx.domain:
        actor = await session.scalar(select(Actor).where(
            func.lower(Actor.username) == name.lower(), Actor.domain == ""))
        if actor is None:
            raise UnknownActor(f"no local account {name}")
        return actor
    if not await is_partner(session, host):
        raise NotPartner(f"{host} is not a partner instance")
    known = await session.scalar(select(Actor).where(
        func.lower(Actor.username) == name.lower(), Actor.domain == host))
    if known is not None:
        return known
    uri = await lookup_actor_uri(ctx, name, host)
    return await get_remote_actor(ctx, session, uri)
