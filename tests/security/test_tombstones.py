"""Tombstones and our own addresses, through the two-commune rig (a.test receives, b.test sends).

A Delete that overtakes its Create leaves a Tombstone naming who deleted: only the note's author's
tombstone stops the author's Create; a village's relayed Delete of a note not arrived yet leaves one
once the note's origin says it is gone; our own post under another spelling of our host is found
locally, never fetched; a deleted post of ours is 410 to partners only when it was public.
"""

from __future__ import annotations

from typing import Any

import pytest

from voisinage.federation.local_keys import get_instance_actor, signer_for
from voisinage.federation.partners import host_of
from voisinage.federation.transport import HttpStatus
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.interaction import Favourite
from voisinage.models.post import Post
from voisinage.models.tombstone import Tombstone

from ..federation.test_exchange import follow
from ..federation.test_inbox import A, B, create_note, send
from ..rig.pair import Pair
from .test_hostile_input import Recording

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
CEDAR = f"{B}/users/cedar"
DOGWOOD = f"{B}/users/dogwood"


def delete(actor: str, obj: str, n: int) -> dict[str, Any]:
    return {"id": f"{actor}#deletes/{n}", "type": "Delete", "actor": actor, "object": obj, "to": [PUBLIC]}


async def tombstones(p: Pair) -> dict[str, str | None]:
    """a.test's tombstones: {uri: deleter}."""
    return {t.uri: t.deleter_uri for t in await p.a.rows(Tombstone)}


async def remote_posts(p: Pair) -> set[str]:
    return {r.uri for r in await p.a.rows(Post, Post.local.is_(False))}


async def known_signers(p: Pair) -> None:
    """a.test knows cedar and dogwood (their keys fetched once)."""
    for signer in ("cedar", "dogwood"):
        assert await send(p, create_note(note_id=f"{B}/users/{signer}/statuses/100", author=f"{B}/users/{signer}",
                                         actor=f"{B}/users/{signer}"), signer=signer) == 202
    await p.drain()
    assert await p.a.count(Actor, Actor.uri.in_([CEDAR, DOGWOOD])) == 2


async def test_a_tombstone_by_someone_else_does_not_stop_the_authors_create(pair: Pair) -> None:
    await known_signers(pair)
    posts = await remote_posts(pair)
    cedar_before = (await pair.a.rows(Actor, Actor.uri == CEDAR))[0]
    for n, obj in enumerate((f"{CEDAR}/statuses/1", CEDAR, f"{CEDAR}/followers")):
        assert await send(pair, delete(DOGWOOD, obj, n), signer="dogwood") == 202
    await pair.drain()
    # never a tombstone on an actor's address; the one for cedar's note is dogwood's and stops nothing
    assert await tombstones(pair) == {f"{CEDAR}/statuses/1": DOGWOOD, f"{CEDAR}/followers": DOGWOOD}
    cedar = (await pair.a.rows(Actor, Actor.uri == CEDAR))[0]
    assert cedar.suspended_at is None and cedar.updated_at == cedar_before.updated_at
    assert await remote_posts(pair) == posts
    assert await send(pair, create_note(note_id=f"{CEDAR}/statuses/1")) == 202
    await pair.drain()
    assert await remote_posts(pair) == posts | {f"{CEDAR}/statuses/1"}


async def test_the_authors_delete_before_create_still_drops_the_create(pair: Pair) -> None:
    await known_signers(pair)
    posts = await remote_posts(pair)
    # cedar's own Delete first; dogwood's afterwards does not take it over
    assert await send(pair, delete(CEDAR, f"{CEDAR}/statuses/2", 1)) == 202
    assert await send(pair, delete(DOGWOOD, f"{CEDAR}/statuses/2", 2), signer="dogwood") == 202
    # dogwood's Delete first; cedar's, of a note under cedar's own address, takes it over
    assert await send(pair, delete(DOGWOOD, f"{CEDAR}/statuses/3", 3), signer="dogwood") == 202
    assert await send(pair, delete(CEDAR, f"{CEDAR}/statuses/3", 4)) == 202
    await pair.drain()
    assert await tombstones(pair) == {f"{CEDAR}/statuses/2": CEDAR, f"{CEDAR}/statuses/3": CEDAR}
    for n in (2, 3):
        assert await send(pair, create_note(note_id=f"{CEDAR}/statuses/{n}")) == 202
    await pair.drain()
    assert await remote_posts(pair) == posts  # not resurrected


async def test_a_relayed_delete_of_a_note_not_arrived_leaves_the_authors_tombstone(pair: Pair) -> None:
    await known_signers(pair)
    status, alive = await pair.b.api("cedar").post("/api/v1/statuses", json={"status": "Toujours là",
                                                                            "visibility": "public"})
    assert status == 200
    await pair.drain()
    await follow(pair.a, "alder", "@cedar@b.test")  # afterwards: a.test may see the note, never received it
    await pair.drain()
    posts = await remote_posts(pair)
    assert alive["uri"] not in posts

    def relayed(signer: str, note: str, n: int) -> dict[str, Any]:
        return {"id": f"{B}/{signer}#announces/{n}", "type": "Announce", "actor": f"{B}/{signer}",
                "object": delete(CEDAR, note, n), "to": [PUBLIC]}

    mark = len(pair.network.sent)
    assert await send(pair, relayed("villages/north", f"{CEDAR}/statuses/77", 1), signer="north") == 202
    assert await send(pair, relayed("villages/north", alive["uri"], 2), signer="north") == 202  # still there
    assert await send(pair, relayed("users/cedar", f"{CEDAR}/statuses/78", 3)) == 202  # not a village
    await pair.drain()
    checked = [(s.url, s.status) for s in pair.network.sent[mark:] if s.method == "GET" and "/statuses/" in s.url]
    assert checked == [(f"{CEDAR}/statuses/77", 404), (alive["uri"], 200)]
    assert await tombstones(pair) == {f"{CEDAR}/statuses/77": CEDAR}
    # the late Create, and the village's late Announce of the note: neither stored
    late = create_note(note_id=f"{CEDAR}/statuses/77", to=[PUBLIC])
    assert await send(pair, late) == 202
    assert await send(pair, {"id": f"{B}/villages/north#announces/9", "type": "Announce",
                             "actor": f"{B}/villages/north", "object": late["object"], "to": [PUBLIC]},
                      signer="north") == 202
    await pair.drain()
    assert await remote_posts(pair) == posts


async def test_our_post_under_other_spellings_of_our_host_is_found_and_never_fetched(pair: Pair) -> None:
    ctx = pair.ctx(pair.a)
    recording = ctx.transport = Recording(ctx.transport)
    status, local = await pair.a.api("alder").post("/api/v1/statuses", json={"status": "Fête des voisins"})
    assert status == 200
    await pair.drain()
    path = local["uri"].removeprefix(A)
    likes = [{"id": f"{CEDAR}#likes/{n}", "type": "Like", "actor": CEDAR, "object": f"{origin}{path}"}
             for n, origin in enumerate(("https://A.TEST", "https://a.test:8443"))]
    boosts = [{"id": f"{CEDAR}/statuses/9{n}/activity", "type": "Announce", "actor": CEDAR,
               "object": f"{origin}{path}", "to": [PUBLIC]}
              for n, origin in enumerate(("https://a.test:443", "http://a.test:80", "https://a.test:8443"))]
    for activity in likes + boosts:
        assert await send(pair, activity) == 202, activity["id"]
    await pair.drain()
    # the ones on our host found our post; :8443 is another host (not a partner): nothing stored
    favourites = await pair.a.rows(Favourite)
    assert [(f.uri, f.post_id) for f in favourites] == [(f"{CEDAR}#likes/0", int(local["id"]))]
    reblogs = await pair.a.rows(Post, Post.uri.startswith(CEDAR))
    assert sorted((r.uri, r.reblog_of_id) for r in reblogs) == [
        (f"{CEDAR}/statuses/90/activity", int(local["id"])), (f"{CEDAR}/statuses/91/activity", int(local["id"]))]
    shown = (await pair.a.rows(Post, Post.id == int(local["id"])))[0]
    assert (shown.favourites_count, shown.reblogs_count) == (1, 2)
    assert not [u for u in recording.fetched if host_of(u).split(":")[0] == "a.test"]


async def fetch_from_b(p: Pair, url: str) -> int:
    """b.test's instance actor GETs `url` on a.test (signed, as a partner); the status."""
    ctx = p.ctx(p.b)
    async with write_session(p.b.sessionmaker) as session:
        sign = signer_for(await get_instance_actor(session, ctx))
        try:
            await ctx.transport.get_json(url, sign=sign)
        except HttpStatus as exc:
            return exc.status
    return 200


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private", "direct"])
async def test_a_deleted_post_is_410_only_when_it_was_public(pair: Pair, visibility: str) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")  # b.test may see alder's public and private posts
    await pair.drain()
    status, local = await pair.a.api("alder").post("/api/v1/statuses", json={
        "status": "@cedar@b.test Rendez-vous", "visibility": visibility})
    assert status == 200
    await pair.drain()
    assert await fetch_from_b(pair, local["uri"]) == (404 if visibility == "unlisted" else 200)
    assert (await pair.a.api("alder").delete(f"/api/v1/statuses/{local['id']}"))[0] == 200
    await pair.drain()
    [tombstone] = await pair.a.rows(Tombstone, Tombstone.uri == local["uri"])
    assert (tombstone.deleter_uri, tombstone.public) == (f"{A}/users/alder", visibility == "public")
    gone = 410 if visibility == "public" else 404
    assert await fetch_from_b(pair, local["uri"]) == gone
    assert await fetch_from_b(pair, f"{local['uri']}/activity") == gone
    assert await fetch_from_b(pair, f"{A}/users/alder/statuses/{int(local['id']) + 1}") == 404
    assert await pair.a.count(Post, Post.id == int(local["id"])) == 0
