"""Keys of our own actors: created lazily, loaded once, and the signing callback the transport uses.

Registration does not create keys (RSA generation costs tens of milliseconds); the first federation
use of a local actor calls `ensure_local_keys`, which makes them in a thread, once per process even
when several requests need them together. Each local actor gets an RSA-2048 key (draft-cavage HTTP
signatures, `#main-key`) and an Ed25519 key (FEP-8b32 object proofs, `#ed25519-key`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from voisinage.models.actor import ACTOR_ROW_BY_URI, APPLICATION, Actor
from voisinage.models.db import load_fast
from voisinage.models.ids import new_id
from voisinage.models.uris import instance_actor_uri

from .context import FederationContext
from .keys import generate_ed25519, generate_rsa, load_ed25519_private, load_private
from .signatures import sign_request
from .transport import Signer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from .keys import PrivateKey

INSTANCE_ACTOR_USERNAME = "actor"

# Loading a private key checks it, which is slow (40-70 ms for RSA): each PEM is loaded once per process.
_loaded_private = functools.lru_cache(maxsize=1024)(load_private)
_loaded_ed25519 = functools.lru_cache(maxsize=1024)(load_ed25519_private)


def main_key_id(actor: KeyHolder) -> str:
    """The keyId of an actor's RSA key, as published in its document."""
    return f"{actor.uri}#main-key"


def ed25519_key_id(actor: Actor) -> str:
    """The id of an actor's Ed25519 verification method (FEP-521a `assertionMethod`)."""
    return f"{actor.uri}#ed25519-key"


class KeysMissing(Exception):
    """A local actor has no keys yet, where the caller may not store them (a read session)."""


def has_keys(actor: Actor) -> bool:
    """Whether a local actor has all its keys: `ensure_local_keys` would store nothing."""
    return bool(actor.private_key_pem and actor.public_key_pem and actor.ed25519_private_pem
                and actor.ed25519_public_multikey and actor.key_id == main_key_id(actor))


async def ensure_local_keys(session: AsyncSession, actor: Actor, *, make: bool = True) -> None:
    """Give a local actor its RSA and Ed25519 keys if it has none yet; without `make`, raise KeysMissing
    instead (the session is a read).

    The keys are stored only where the row has none: transactions that found the actor without keys
    at once (its first posts, made together) wait for the first one's commit, not each for the one
    before (an UPDATE holds its row until the commit), and then take the keys it stored, another
    process's too (which generated its own)."""
    if not actor.local:
        raise ValueError("keys are only generated for local actors")
    if not make and not has_keys(actor):
        raise KeysMissing(actor.uri)
    for _ in range(2):
        values = await _missing_keys(actor)
        if not values:
            return
        await session.flush()  # an actor just added: its row first
        table = Actor.__table__
        empty = [or_(table.c[name].is_(None), table.c[name] == "") for name in values if name != "key_id"]
        stored = await session.execute(update(table).where(table.c.id == actor.id, *empty).values(values))
        if stored.rowcount:
            for name, value in values.items():
                set_committed_value(actor, name, value)
            return
        row = (await session.execute(select(*(table.c[name] for name in _KEY_COLUMNS))
                                     .where(table.c.id == actor.id))).one()
        for name in _KEY_COLUMNS:
            set_committed_value(actor, name, getattr(row, name))
    raise RuntimeError(f"the keys of {actor.uri} could not be stored")


_KEY_COLUMNS = ("private_key_pem", "public_key_pem", "ed25519_private_pem", "ed25519_public_multikey", "key_id")


async def _missing_keys(actor: Actor) -> dict[str, str]:
    """The key columns the actor lacks, with values to store (generated once per process)."""
    values: dict[str, str] = {}
    if not actor.private_key_pem or not actor.public_key_pem:
        values["private_key_pem"], values["public_key_pem"] = await _generated(actor.id, "rsa")
    if not actor.ed25519_private_pem or not actor.ed25519_public_multikey:
        values["ed25519_private_pem"], values["ed25519_public_multikey"] = await _generated(actor.id, "ed25519")
    if actor.key_id != main_key_id(actor):
        values["key_id"] = main_key_id(actor)
    return values


# Keys generated in this process, by (actor id, kind), until their transaction has surely committed:
# requests that find the same actor without keys at once (its first posts, made together) wait for
# one generation and write the same keys, instead of each making its own (RSA: tens of milliseconds)
# and the last commit replacing the keys the others' deliveries were signed with.
_GENERATED: collections.OrderedDict[tuple[int, str], asyncio.Future[tuple[str, str]]] = collections.OrderedDict()
_GENERATED_KEPT = 256


async def _generated(actor_id: int, kind: str) -> tuple[str, str]:
    """(private, public) of `kind` for the actor: made once per process (RSA in a thread: its tens of
    milliseconds would stop the event loop)."""
    key = (actor_id, kind)
    made = _GENERATED.get(key)
    if made is None:
        made = _GENERATED[key] = asyncio.ensure_future(
            asyncio.to_thread(generate_rsa) if kind == "rsa" else asyncio.to_thread(generate_ed25519))
        made.add_done_callback(functools.partial(_forget_failure, key))
        while len(_GENERATED) > _GENERATED_KEPT:
            _GENERATED.popitem(last=False)
    return await asyncio.shield(made)


def _forget_failure(key: tuple[int, str], done: asyncio.Future[tuple[str, str]]) -> None:
    """A generation that failed is not kept: the next use tries again."""
    if done.cancelled() or done.exception() is not None:
        _GENERATED.pop(key, None)


class KeyHolder(Protocol):
    """What signing reads of a local actor: an Actor, or a row of these columns (the delivery worker's)."""

    uri: str
    key_id: str | None
    private_key_pem: str | None


def private_key_of(actor: KeyHolder) -> PrivateKey:
    """The actor's loaded RSA private key (cached). Raises ValueError when it has none."""
    if not actor.private_key_pem or not actor.key_id:
        raise ValueError(f"actor {actor.uri} has no private key (call ensure_local_keys)")
    return _loaded_private(actor.private_key_pem)


def ed25519_private_key_of(actor: Actor) -> Ed25519PrivateKey:
    """The actor's loaded Ed25519 private key (cached). Raises ValueError when it has none."""
    if not actor.ed25519_private_pem:
        raise ValueError(f"actor {actor.uri} has no Ed25519 key (call ensure_local_keys)")
    return _loaded_ed25519(actor.ed25519_private_pem)


def signer_for(actor: KeyHolder) -> Signer:
    """A transport `sign(method, url, headers, body) -> headers` callback signing as `actor`.

    draft-cavage rsa-sha256 over (request-target) host date [digest], as Mastodon expects.
    The key is loaded now, so a missing key fails here and not in the middle of a request.
    """
    key = private_key_of(actor)
    key_id = actor.key_id or main_key_id(actor)

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> dict[str, str]:
        return sign_request(method, url, headers, body or b"", key_id, key)

    return sign


async def get_instance_actor(session: AsyncSession, ctx: FederationContext) -> Actor:
    """Our Application actor (`/actor`), which signs fetches made for the instance; created on first use."""
    uri = instance_actor_uri(ctx.base_url)
    actor = await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": uri})
    if actor is None:
        try:
            async with session.begin_nested():  # two first requests at once: one insert wins
                actor = Actor(id=new_id(), username=INSTANCE_ACTOR_USERNAME, domain="", kind=APPLICATION,
                              uri=uri, url=uri, inbox_uri=f"{uri}/inbox", outbox_uri=f"{uri}/outbox",
                              shared_inbox_uri=f"{ctx.base_url}/inbox", display_name=ctx.domain, locked=True,
                              discoverable=False, bot=True, note="", note_source="", fields=[])
                session.add(actor)
        except IntegrityError:
            actor = await load_fast(session, Actor, ACTOR_ROW_BY_URI, {"uri": uri})
            if actor is None:
                raise
    await ensure_local_keys(session, actor)
    return actor
