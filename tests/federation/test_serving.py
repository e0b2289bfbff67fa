"""Actor documents (minimal vs full) and authorized fetch of our objects (SECURITY.md "Serving")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from voisinage.federation.context import FEDERATION
from voisinage.federation.keys import multikey_to_public, public_pem_of
from voisinage.federation.outbox import render_note
from voisinage.federation.proofs import verify_proof
from voisinage.federation.transport import HttpTransport
from voisinage.federation.vocab import AP_ACCEPT
from voisinage.models.actor import APPLICATION, Actor
from voisinage.models.db import write_session, writes_on_loop
from voisinage.models.instance import Instance
from voisinage.models.post import Mention, Post

from .partner_helpers import Remote, add_remote, follow, rsa_pair

MINIMAL_KEYS = {"@context", "id", "type", "preferredUsername", "inbox", "outbox", "followers", "endpoints",
                "publicKey"}


async def get(rig: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    response = await rig.client.get(path, headers=headers or {"Accept": AP_ACCEPT})
    body = await response.json(content_type=None) if response.status == 200 else await response.text()
    return response.status, body, response.headers


async def post_status(rig: Any, who: str, text: str, visibility: str) -> str:
    status, body = await rig.api(who).post("/api/v1/statuses", json={"status": text, "visibility": visibility})
    assert status == 200, body
    return str(body["id"])


# -- actor documents --------------------------------------------------------------------------


async def test_unsigned_actor_document_is_minimal(rig: Any) -> None:
    status, doc, headers = await get(rig, "/users/alder")
    assert status == 200
    assert headers["Content-Type"].startswith("application/activity+json")
    assert set(doc) == MINIMAL_KEYS
    assert doc["id"] == "https://a.test/users/alder" and doc["type"] == "Person"
    assert doc["publicKey"]["id"] == "https://a.test/users/alder#main-key"
    assert "BEGIN PUBLIC KEY" in doc["publicKey"]["publicKeyPem"]
    assert doc["endpoints"] == {"sharedInbox": "https://a.test/inbox"}


async def test_partner_signed_actor_document_is_full(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    status, doc, headers = await get(rig, "/users/alder", remote.headers("/users/alder"))
    assert status == 200
    assert doc["name"] == "Alder Aulne" and "summary" in doc
    assert headers["Cache-Control"].startswith("private")
    method = doc["assertionMethod"][0]
    assert method["id"] == "https://a.test/users/alder#ed25519-key" and method["type"] == "Multikey"
    multikey_to_public(method["publicKeyMultibase"])  # a valid Ed25519 key


async def test_a_known_partners_signed_fetch_waits_for_no_writer(rig: Any) -> None:
    """A partner's signed GET whose key is known is verified in a read: it is answered while another
    writer holds SQLite's write lock (a busy commune's posts)."""
    if not writes_on_loop(rig.sessionmaker):
        pytest.skip("PostgreSQL has no write lock for a reader to wait on")
    remote = await add_remote(rig.sessionmaker)
    status, _, _ = await get(rig, "/users/alder", remote.headers("/users/alder"))  # alder's keys made
    assert status == 200
    status, doc, _ = await _beside_a_held_write_lock(rig, lambda: get(rig, "/users/alder", remote.headers("/users/alder")))
    assert status == 200 and doc["name"] == "Alder Aulne"


async def _beside_a_held_write_lock(rig: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
    """What `fetch()` gives while another writer holds SQLite's write lock (a busy commune's posts)."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with write_session(rig.sessionmaker):
            holding.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await holding.wait()
    try:
        async with asyncio.timeout(5):
            return await fetch()
    finally:
        release.set()
        await task


async def test_a_known_partners_fetch_of_notes_and_outbox_waits_for_no_writer(rig: Any) -> None:
    """A partner fetching a note, its Create or the outbox of an author with keys reads them: answered
    while another writer holds SQLite's write lock."""
    if not writes_on_loop(rig.sessionmaker):
        pytest.skip("PostgreSQL has no write lock for a reader to wait on")
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "Tondeuse à prêter", "public")  # delivered: alder has keys
    paths = [f"/users/alder/statuses/{post_id}", f"/users/alder/statuses/{post_id}/activity", "/users/alder/outbox"]
    status, _, _ = await get(rig, "/users/alder", remote.headers("/users/alder"))  # the signer's key known
    assert status == 200

    async def fetch_all() -> list[tuple[int, Any, Any]]:
        return [await get(rig, path, remote.headers(path)) for path in paths]

    answers = await _beside_a_held_write_lock(rig, fetch_all)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    note, create, outbox = (body for _, body, _ in answers)
    assert "Tondeuse" in note["content"] and create["object"]["id"] == note["id"]
    assert [item["object"]["id"] for item in outbox["orderedItems"]] == [note["id"]]


async def test_a_fetched_note_gives_its_author_keys_on_first_use(rig: Any) -> None:
    """A note of an author who never federated (no keys yet) is served signed: the fetch makes the keys."""
    remote = await add_remote(rig.sessionmaker)
    post_id = await post_status(rig, "alder", "Perdu un chat roux", "public")  # nobody remote follows yet
    alder = (await rig.rows(Actor, Actor.username == "alder", Actor.domain == ""))[0]
    assert alder.ed25519_public_multikey is None and alder.private_key_pem is None
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    path = f"/users/alder/statuses/{post_id}"
    status, note, _ = await get(rig, path, remote.headers(path))
    assert status == 200, note
    alder = (await rig.rows(Actor, Actor.username == "alder", Actor.domain == ""))[0]
    assert alder.private_key_pem and alder.ed25519_public_multikey
    assert verify_proof(note, lambda method: alder.ed25519_public_multikey) is True


async def test_non_partner_signed_actor_document_is_not_found(rig: Any) -> None:
    """A stranger that signs says who it is: like every fetch by a non-partner, 404 (SECURITY.md)."""
    stranger = await add_remote(rig.sessionmaker, "c.test", partner=False)
    for path in ("/users/alder", "/villages/north"):
        status, _, _ = await get(rig, path, stranger.headers(path))
        assert status == 404, path


async def test_bad_signature_gets_minimal_document(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    headers = remote.headers("/users/birch")  # signed for another path
    status, doc, _ = await get(rig, "/users/alder", headers)
    assert status == 200 and set(doc) == MINIMAL_KEYS


async def test_village_document_is_a_group(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    status, doc, _ = await get(rig, "/villages/north", remote.headers("/villages/north"))
    assert status == 200
    assert doc["type"] == "Group" and doc["name"] == "Nord"
    assert doc["manuallyApprovesFollowers"] is True
    assert doc["followers"] == "https://a.test/villages/north/followers"
    assert doc["attributedTo"] == doc["moderators"]


async def test_instance_actor(rig: Any) -> None:
    status, doc, _ = await get(rig, "/actor")
    assert status == 200 and doc["type"] == "Application" and doc["id"] == "https://a.test/actor"
    assert doc["publicKey"]["id"] == "https://a.test/actor#main-key"
    stranger = await add_remote(rig.sessionmaker, "c.test", partner=False)
    status, _, _ = await get(rig, "/actor", stranger.headers("/actor"))  # no key lookup, no loop
    assert status == 200
    assert await rig.count(Actor, Actor.kind == APPLICATION) == 1
    await get(rig, "/actor")
    assert await rig.count(Actor, Actor.kind == APPLICATION) == 1


async def test_html_and_unknown_are_refused(rig: Any) -> None:
    status, _, _ = await get(rig, "/users/alder", {"Accept": "text/html"})
    assert status == 406
    status, _, _ = await get(rig, "/users/nobody")
    assert status == 404
    status, _, _ = await get(rig, "/villages/alder")  # a person is not a village
    assert status == 404


# -- authorized fetch -------------------------------------------------------------------------


async def test_unsigned_object_and_collections_are_401(rig: Any) -> None:
    post_id = await post_status(rig, "alder", "bonjour", "public")
    for path in (f"/users/alder/statuses/{post_id}", f"/users/alder/statuses/{post_id}/activity",
                 "/users/alder/outbox", "/users/alder/followers", "/users/alder/following",
                 "/villages/north/outbox", "/villages/north/followers"):
        status, body, _ = await get(rig, path)
        assert status == 401, path
        assert "bonjour" not in body


async def test_non_partner_signature_is_404_without_any_lookup(rig: Any, aiohttp_server: Any) -> None:
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    ctx = rig.app[FEDERATION]
    async with HttpTransport(allow_private_addresses=True) as transport:
        ctx.transport = transport
        stranger_host = f"127.0.0.1:{server.port}"
        post_id = await post_status(rig, "alder", "bonjour", "public")
        # An unknown actor on a non-partner host: its key would have to be fetched from the server.
        remote = Remote(0, f"http://{stranger_host}/users/x", f"http://{stranger_host}/users/x#main-key",
                        rsa_pair()[0], stranger_host)
        before = await rig.count(Actor)
        status, _, _ = await get(rig, f"/users/alder/statuses/{post_id}",
                                 remote.headers(f"/users/alder/statuses/{post_id}"))
        assert status == 404
        status, _, _ = await get(rig, "/users/alder/outbox", remote.headers("/users/alder/outbox"))
        assert status == 404
        assert seen == []
        assert await rig.count(Actor) == before
        assert await rig.count(Instance, Instance.host == stranger_host) == 0


async def test_non_partner_known_actor_is_404(rig: Any) -> None:
    stranger = await add_remote(rig.sessionmaker, "c.test", partner=False)
    await follow(rig.sessionmaker, stranger.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "bonjour", "public")
    path = f"/users/alder/statuses/{post_id}"
    status, _, _ = await get(rig, path, stranger.headers(path))
    assert status == 404


async def test_public_post_served_to_follower_host(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    post_id = await post_status(rig, "alder", "bonjour #annonce", "public")
    path = f"/users/alder/statuses/{post_id}"
    status, _, _ = await get(rig, path, remote.headers(path))
    assert status == 404  # nobody on b.test follows the village or alder
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    status, note, headers = await get(rig, path, remote.headers(path))
    assert status == 200
    assert headers["Cache-Control"].startswith("private")
    assert headers["Content-Type"].startswith("application/activity+json")
    assert note["id"] == f"https://a.test{path}" and note["type"] == "Note"
    assert note["to"] == ["https://a.test/villages/north/followers"]
    assert note["audience"] == "https://a.test/villages/north"
    alder = (await rig.rows(Actor, Actor.username == "alder", Actor.domain == ""))[0]
    assert verify_proof(note, lambda method: alder.ed25519_public_multikey if method.endswith("#ed25519-key")
                        else None) is True


async def test_a_served_note_is_the_one_delivered_with_its_media_and_poll(rig: Any) -> None:
    """A partner fetching one of our notes (an Announce that carried only its id, a reply's parent) gets
    the note we deliver: its media and its poll's Question, under the same proof."""
    from ..server.test_status_media import upload_photo

    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    photo = await upload_photo(rig, "alder", "le vélo")
    status, body = await rig.api("alder").post("/api/v1/statuses", json={
        "status": "Vélo à donner #annonce", "visibility": "public", "media_ids": [photo]})
    assert status == 200, body
    status, poll = await rig.api("alder").post("/api/v1/statuses", json={
        "status": "Quel jour ?", "visibility": "public", "poll": {"options": ["samedi", "dimanche"], "expires_in": 3600}})
    assert status == 200, poll
    alder = (await rig.rows(Actor, Actor.username == "alder", Actor.domain == ""))[0]
    ctx = rig.app[FEDERATION]
    for posted in (body, poll):
        path = f"/users/alder/statuses/{posted['id']}"
        status, note, _ = await get(rig, path, remote.headers(path))
        assert status == 200, note
        async with rig.sessionmaker() as session:
            delivered, _ = await render_note(session, ctx, await session.get(Post, int(posted["id"])))
        assert {k: v for k, v in note.items() if k != "proof"} == {k: v for k, v in delivered.items() if k != "proof"}
        assert verify_proof(note, lambda method: alder.ed25519_public_multikey) is True
        status, activity, _ = await get(rig, f"{path}/activity", remote.headers(f"{path}/activity"))
        assert status == 200 and activity["type"] == "Create"
        assert {k: v for k, v in activity["object"].items() if k != "proof"} == \
            {k: v for k, v in delivered.items() if k != "proof"}
    status, note, _ = await get(rig, f"/users/alder/statuses/{body['id']}", remote.headers(f"/users/alder/statuses/{body['id']}"))
    assert [a["name"] for a in note["attachment"]] == ["le vélo"]
    status, question, _ = await get(rig, f"/users/alder/statuses/{poll['id']}", remote.headers(f"/users/alder/statuses/{poll['id']}"))
    assert question["type"] == "Question" and [o["name"] for o in question["oneOf"]] == ["samedi", "dimanche"]


async def test_partner_instance_actor_may_fetch_for_its_residents(rig: Any) -> None:
    resident = await add_remote(rig.sessionmaker, username="rowan")
    instance = await add_remote(rig.sessionmaker, username="b.test", kind=APPLICATION, path="/actor", key_index=1)
    await follow(rig.sessionmaker, resident.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "bonjour", "public")
    path = f"/users/alder/statuses/{post_id}/activity"
    status, activity, _ = await get(rig, path, instance.headers(path))
    assert status == 200
    assert activity["type"] == "Create" and activity["object"]["id"] == f"https://a.test/users/alder/statuses/{post_id}"


async def test_private_post_needs_a_follower_of_the_author(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "for my followers", "private")
    path = f"/users/alder/statuses/{post_id}"
    status, _, _ = await get(rig, path, remote.headers(path))
    assert status == 404
    await follow(rig.sessionmaker, remote.actor_id, rig["alder"].actor_id)
    status, note, _ = await get(rig, path, remote.headers(path))
    assert status == 200 and note["to"] == ["https://a.test/users/alder/followers"]


async def test_unlisted_post_is_never_served(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    await follow(rig.sessionmaker, remote.actor_id, rig["alder"].actor_id)
    post_id = await post_status(rig, "alder", "village only", "unlisted")
    for suffix in ("", "/activity"):
        path = f"/users/alder/statuses/{post_id}{suffix}"
        status, _, _ = await get(rig, path, remote.headers(path))
        assert status == 404


async def test_direct_post_needs_a_mention_on_the_host(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig["alder"].actor_id)
    post_id = await post_status(rig, "alder", "psst @birch", "direct")
    path = f"/users/alder/statuses/{post_id}"
    status, _, _ = await get(rig, path, remote.headers(path))
    assert status == 404
    async with write_session(rig.sessionmaker) as session:
        session.add(Mention(post_id=int(post_id), actor_id=remote.actor_id))
    status, note, _ = await get(rig, path, remote.headers(path))
    assert status == 200 and remote.uri in note["to"]


async def test_outbox_and_followers_for_a_partner(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    await post_status(rig, "alder", "seen", "public")
    await post_status(rig, "alder", "hidden", "private")
    status, outbox, headers = await get(rig, "/users/alder/outbox", remote.headers("/users/alder/outbox"))
    assert status == 200 and headers["Cache-Control"].startswith("private")
    contents = [item["object"]["content"] for item in outbox["orderedItems"]]
    assert len(contents) == 1 and "seen" in contents[0]
    path = "/villages/north/followers"
    status, followers, _ = await get(rig, path, remote.headers(path))
    assert status == 200 and followers["orderedItems"] == [remote.uri]


async def test_unknown_post_is_404_for_a_partner(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    path = "/users/alder/statuses/12345"
    status, _, _ = await get(rig, path, remote.headers(path))
    assert status == 404
    post_id = await post_status(rig, "birch", "not alder's", "public")
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    path = f"/users/alder/statuses/{post_id}"
    status, _, _ = await get(rig, path, remote.headers(path))
    assert status == 404


async def test_key_rows_untouched_by_minimal_fetch(rig: Any) -> None:
    """Serving creates the resident's keys once; later fetches keep the same key."""
    _, first, _ = await get(rig, "/users/birch")
    _, second, _ = await get(rig, "/users/birch")
    assert first["publicKey"] == second["publicKey"]
    async with rig.sessionmaker() as session:
        birch = await session.scalar(select(Actor).where(Actor.username == "birch"))
    assert birch is not None and birch.ed25519_public_multikey and birch.key_id.endswith("#main-key")


async def test_rotated_key_is_refetched_once(rig: Any, aiohttp_server: Any) -> None:
    """The stored key is stale: verification fails, the key is refetched, and the request passes."""
    documents: dict[str, Any] = {}
    seen: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response(documents[request.path], content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    server = await aiohttp_server(app)
    host = f"127.0.0.1:{server.port}"
    stale = await add_remote(rig.sessionmaker, host, path="/users/rowan", key_index=0, scheme="http")
    uri = stale.uri
    documents["/users/rowan"] = {"id": uri, "type": "Person", "preferredUsername": "rowan",
                                 "inbox": f"{uri}/inbox",
                                 "publicKey": {"id": stale.key_id, "owner": uri,
                                               "publicKeyPem": public_pem_of(rsa_pair(1)[0])}}
    rotated = Remote(stale.actor_id, uri, stale.key_id, rsa_pair(1)[0], host)
    await follow(rig.sessionmaker, stale.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "bonjour", "public")
    path = f"/users/alder/statuses/{post_id}"
    ctx = rig.app[FEDERATION]
    async with HttpTransport(allow_private_addresses=True, local_hosts={"a.test"}) as transport:
        ctx.transport = transport
        status, _, _ = await get(rig, path, rotated.headers(path))
        assert status == 200
        assert seen == ["/users/rowan"]
        status, _, _ = await get(rig, path, rotated.headers(path))
        assert status == 200 and seen == ["/users/rowan"]  # the new key is cached
        status, _, _ = await get(rig, path, stale.headers(path))  # the old key no longer works
        assert status == 401


async def test_village_announce_is_served(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    await follow(rig.sessionmaker, remote.actor_id, rig.village_ids["north"])
    post_id = await post_status(rig, "alder", "annoncé", "public")
    boosts = await rig.rows(Post, Post.reblog_of_id == int(post_id), Post.author_id == rig.village_ids["north"])
    assert len(boosts) == 1
    path = f"/villages/north/statuses/{boosts[0].id}/activity"
    status, _, _ = await get(rig, path)
    assert status == 401
    status, announce, _ = await get(rig, path, remote.headers(path))
    assert status == 200 and announce["type"] == "Announce" and announce["id"] == f"https://a.test{path}"
    assert announce["actor"] == "https://a.test/villages/north"
    assert announce["object"]["id"] == f"https://a.test/users/alder/statuses/{post_id}"
    assert announce["to"] == ["https://a.test/villages/north/followers"]
    object_path = f"/villages/north/statuses/{boosts[0].id}"
    status, _, _ = await get(rig, object_path, remote.headers(object_path))
    assert status == 404  # a boost is an activity, not an object
    status, outbox, _ = await get(rig, "/villages/north/outbox", remote.headers("/villages/north/outbox"))
    assert status == 200 and [item["type"] for item in outbox["orderedItems"]] == ["Announce"]
