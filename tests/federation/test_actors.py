"""Fetching remote actors from a real loopback server serving the shapes peers send."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from voisinage.federation.actors import (
    ApParseError,
    NotPartner,
    get_remote_actor,
    parse_handle,
    public_key_for,
)
from voisinage.federation.context import FEDERATION, FederationContext
from voisinage.federation.keys import public_pem_of
from voisinage.federation.partners import (
    add_partner,
    host_of,
    is_partner,
    list_partners,
    remove_partner,
)
from voisinage.federation.signatures import key_id_of
from voisinage.federation.transport import FetchError, HttpTransport
from voisinage.models.actor import GROUP, PERSON, Actor
from voisinage.models.db import write_session

from .partner_helpers import rsa_pair

FIXTURES = Path(__file__).parent.parent / "fixtures"
FIXTURE_ORIGINS = ("https://mastodon.example", "https://gotosocial.example", "https://lemmy.example",
                   "http://127.0.0.1:8181")


def load(relative: str, origin: str, pem: str) -> dict[str, Any]:
    """A fixture document with its origin replaced by the test server's and the key filled in."""
    text = (FIXTURES / relative).read_text()
    for fixture_origin in FIXTURE_ORIGINS:
        text = text.replace(fixture_origin, origin)
    doc: dict[str, Any] = json.loads(text)
    if "publicKey" in doc and doc["publicKey"]["publicKeyPem"] == "{PUBLIC_KEY_PEM}":
        doc["publicKey"]["publicKeyPem"] = pem
    return doc


@dataclass
class Peer:
    """A loopback server answering with stored documents, recording every request."""

    origin: str = ""
    host: str = ""
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        key_id = key_id_of(request.headers)[0] if "Signature" in request.headers else None
        self.seen.append((request.path, key_id))
        doc = self.documents.get(request.path)
        if doc is None:
            raise web.HTTPNotFound()
        return web.Response(body=json.dumps(doc), content_type="application/activity+json")


@pytest.fixture
async def peer(commune: Any, aiohttp_server: Any) -> Any:
    state = Peer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", state.handle)
    server = await aiohttp_server(app)
    state.host = f"127.0.0.1:{server.port}"
    state.origin = f"http://{state.host}"
    pem = public_pem_of(rsa_pair(0)[0])
    state.documents = {
        "/users/gerard": load("remote/mastodon.example/users_gerard.json", state.origin, pem),
        "/users/hazel": load("remote/gotosocial.example/users_hazel.json", state.origin, pem),
        "/users/hazel/main-key": load("remote/gotosocial.example/users_hazel_main-key.json", state.origin, pem),
        "/c/jardins": load("remote/lemmy.example/c_jardins.json", state.origin, pem),
    }
    alice = load("peers/herd_actor_alice.json", state.origin, pem)
    state.documents[alice["id"].removeprefix(state.origin)] = alice
    ctx: FederationContext = commune.app[FEDERATION]
    async with HttpTransport(allow_private_addresses=True, local_hosts={"a.test"}) as transport:
        ctx.transport = transport
        async with write_session(commune.sessionmaker) as session:
            await add_partner(session, state.host)
        yield state


async def fetch(commune: Any, uri: str, **kw: Any) -> Actor:
    ctx = commune.app[FEDERATION]
    async with write_session(commune.sessionmaker) as session:
        return await get_remote_actor(ctx, session, uri, **kw)


async def test_mastodon_person(commune: Any, peer: Peer) -> None:
    actor = await fetch(commune, f"{peer.origin}/users/gerard")
    assert actor.kind == PERSON and actor.username == "gerard" and actor.domain == peer.host
    assert actor.display_name == "Gérard Potager"
    assert "<script" not in actor.note and "javascript:" not in actor.note and "onclick" not in actor.note
    assert "Jardinier" in actor.note
    assert actor.avatar_url and actor.avatar_url.endswith("/a.png")
    assert actor.header_url and actor.header_url.endswith("/h.jpg")
    assert actor.locked is True
    assert actor.inbox_uri == f"{peer.origin}/users/gerard/inbox"
    assert actor.shared_inbox_uri == f"{peer.origin}/inbox"
    assert actor.outbox_uri == f"{peer.origin}/users/gerard/outbox"
    assert actor.followers_uri == f"{peer.origin}/users/gerard/followers"
    assert actor.key_id == f"{peer.origin}/users/gerard#main-key"
    assert actor.public_key_pem and "BEGIN PUBLIC KEY" in actor.public_key_pem
    assert actor.url == f"{peer.origin}/@gerard"
    # the fetch was signed by our instance actor
    assert peer.seen == [("/users/gerard", "https://a.test/actor#main-key")]
    # known now: no second request
    again = await fetch(commune, f"{peer.origin}/users/gerard")
    assert again.id == actor.id and len(peer.seen) == 1


async def test_gotosocial_person_and_path_key(commune: Any, peer: Peer) -> None:
    ctx = commune.app[FEDERATION]
    key_id = f"{peer.origin}/users/hazel/main-key"
    async with write_session(commune.sessionmaker) as session:
        actor, key = await public_key_for(ctx, session, key_id)
    assert actor.username == "hazel" and actor.locked is False and actor.discoverable is False
    assert actor.key_id == key_id and actor.shared_inbox_uri is None
    assert public_pem_of(key) == public_pem_of(rsa_pair(0)[0])
    assert [path for path, _ in peer.seen] == ["/users/hazel/main-key", "/users/hazel"]
    async with write_session(commune.sessionmaker) as session:
        again, _ = await public_key_for(ctx, session, key_id)
    assert again.id == actor.id and len(peer.seen) == 2  # cached


async def test_bovine_actor(commune: Any, peer: Peer) -> None:
    alice_path = next(p for p in peer.documents if p.startswith("/endpoints/"))
    ctx = commune.app[FEDERATION]
    async with write_session(commune.sessionmaker) as session:
        actor, _ = await public_key_for(ctx, session, f"{peer.origin}{alice_path}#serverKey")
    assert actor.username == "alice" and actor.display_name == "alice"
    assert actor.followers_uri is None and actor.shared_inbox_uri is None
    assert actor.key_id == f"{peer.origin}{alice_path}#serverKey"


async def test_lemmy_group(commune: Any, peer: Peer) -> None:
    actor = await fetch(commune, f"{peer.origin}/c/jardins")
    assert actor.kind == GROUP and actor.username == "jardins" and actor.display_name == "Jardins partagés"
    assert actor.shared_inbox_uri == f"{peer.origin}/inbox"
    assert actor.avatar_url == f"{peer.origin}/pictrs/image/4f1c.png"


async def test_id_mismatch_is_refused(commune: Any, peer: Peer) -> None:
    liar = dict(peer.documents["/users/gerard"])
    peer.documents["/users/liar"] = liar  # claims to be gerard
    with pytest.raises((FetchError, ApParseError)):
        await fetch(commune, f"{peer.origin}/users/liar")
    assert await commune.count(Actor, Actor.domain == peer.host) == 0


async def test_not_an_actor_or_no_inbox_is_refused(commune: Any, peer: Peer) -> None:
    peer.documents["/notes/1"] = {"id": f"{peer.origin}/notes/1", "type": "Note", "inbox": f"{peer.origin}/i"}
    peer.documents["/users/noinbox"] = {"id": f"{peer.origin}/users/noinbox", "type": "Person"}
    peer.documents["/users/elsewhere"] = {"id": f"{peer.origin}/users/elsewhere", "type": "Person",
                                          "inbox": "https://evil.test/inbox"}
    for path in ("/notes/1", "/users/noinbox", "/users/elsewhere"):
        with pytest.raises(ApParseError):
            await fetch(commune, f"{peer.origin}{path}")
    assert await commune.count(Actor, Actor.domain == peer.host) == 0


async def test_non_partner_is_refused_before_any_request(commune: Any, peer: Peer) -> None:
    async with write_session(commune.sessionmaker) as session:
        assert await remove_partner(session, peer.host) is True
    with pytest.raises(NotPartner):
        await fetch(commune, f"{peer.origin}/users/gerard")
    ctx = commune.app[FEDERATION]
    async with write_session(commune.sessionmaker) as session:
        with pytest.raises(NotPartner):
            await public_key_for(ctx, session, f"{peer.origin}/users/gerard#main-key")
    assert peer.seen == []
    assert await commune.count(Actor, Actor.domain == peer.host) == 0


async def test_key_rotation(commune: Any, peer: Peer) -> None:
    ctx = commune.app[FEDERATION]
    key_id = f"{peer.origin}/users/gerard#main-key"
    async with write_session(commune.sessionmaker) as session:
        _, old = await public_key_for(ctx, session, key_id)
    new_pem = public_pem_of(rsa_pair(1)[0])
    peer.documents["/users/gerard"]["publicKey"]["publicKeyPem"] = new_pem
    async with write_session(commune.sessionmaker) as session:
        _, cached = await public_key_for(ctx, session, key_id)
    assert public_pem_of(cached) == public_pem_of(old)
    async with write_session(commune.sessionmaker) as session:
        actor, fresh = await public_key_for(ctx, session, key_id, refresh=True)
    assert public_pem_of(fresh) == new_pem and actor.public_key_pem == new_pem
    async with commune.sessionmaker() as session:
        stored = await session.scalar(select(Actor.public_key_pem).where(Actor.key_id == key_id))
    assert stored == new_pem


async def test_local_urls_are_never_fetched(commune: Any, peer: Peer) -> None:
    actor_id = commune.village_ids["north"]
    actor = await fetch(commune, "https://a.test/villages/north")
    assert actor.id == actor_id and peer.seen == []


async def test_partner_list_and_hosts(commune: Any) -> None:
    assert host_of("https://Example.COM:8443/users/x") == "example.com:8443"
    assert host_of("https://bücher.example/x") == "xn--bcher-kva.example"
    with pytest.raises(ValueError):
        host_of("ftp://example.com/x")
    with pytest.raises(ValueError):
        host_of("https://user@example.com/x")
    async with write_session(commune.sessionmaker) as session:
        await add_partner(session, "B.test")
        assert await is_partner(session, "b.test") and not await is_partner(session, "b.test:443")
        assert [p.host for p in await list_partners(session)] == ["b.test"]
        assert await remove_partner(session, "b.test") and not await is_partner(session, "b.test")
        assert await remove_partner(session, "b.test") is False


def test_parse_handle() -> None:
    assert parse_handle("@alder@A.test") == ("alder", "a.test")
    assert parse_handle("alder@a.test:8443") == ("alder", "a.test:8443")
    assert parse_handle("acct:alder@a.test") == ("alder", "a.test")
    assert parse_handle("alder") == ("alder", None)
    for bad in ("", "@", "a b@c", "alder@"):
        with pytest.raises(ValueError):
            parse_handle(bad)
