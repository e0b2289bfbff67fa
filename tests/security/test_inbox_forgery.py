"""Correctly signed activities that lie: a partner's actor acting on what is not its own.

Each is accepted at the door (202: the signature is good) and then must change nothing: another
actor's note or profile, one of our own posts, a note it did not write, a Follow it was not sent.
The rows that matter are compared before and after the inbox worker ran.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from voisinage.federation.workers import drain
from voisinage.models.actor import Actor
from voisinage.models.follow import Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.post import Post
from voisinage.models.tombstone import Tombstone

from ..federation.test_inbox import A, B, create_note, send
from ..rig.pair import Pair

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def snapshot(p: Pair) -> dict[str, Any]:
    """a.test's posts (author, content), actors (name, note), follows and tombstones on our host."""
    return {
        "posts": {r.uri: (r.author_id, r.content, r.edited_at) for r in await p.a.rows(Post)},
        "actors": {r.uri: (r.display_name, r.note, r.suspended_at) for r in await p.a.rows(Actor)},
        "follows": sorted((r.uri or "", r.follower_id, r.target_id, r.state) for r in await p.a.rows(Follow)),
        "tombstones": sorted(r.uri for r in await p.a.rows(Tombstone)),
    }


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Nothing changed; only new remote actors (the signers' keys, fetched to verify) may appear, and
    tombstones of unknown notes on the signer's own host (a Delete that came before its Create)."""
    assert after["posts"] == before["posts"]
    assert after["follows"] == before["follows"]
    assert {uri: after["actors"][uri] for uri in before["actors"]} == before["actors"]
    assert all(not uri.startswith(A) for uri in set(after["actors"]) - set(before["actors"]))
    added = set(after["tombstones"]) - set(before["tombstones"])
    assert not added & set(before["posts"]) and all(uri.startswith(B) for uri in added), added


async def known_cedar_note(p: Pair) -> str:
    """cedar's note, received by a.test; returns its uri."""
    assert await send(p, create_note()) == 202
    await p.drain()
    uri = f"{B}/users/cedar/statuses/1"
    assert await p.a.count(Post, Post.uri == uri) == 1
    return uri


async def test_dogwood_cannot_update_or_delete_cedars_note_or_profile(pair: Pair) -> None:
    note_uri = await known_cedar_note(pair)
    assert await send(pair, create_note(note_id=f"{B}/users/dogwood/statuses/3", author=f"{B}/users/dogwood",
                                        actor=f"{B}/users/dogwood"), signer="dogwood") == 202
    await pair.drain()  # a.test knows dogwood too
    before = await snapshot(pair)
    forged = [
        {"id": f"{B}/users/dogwood#updates/1", "type": "Update", "actor": f"{B}/users/dogwood",
         "object": {**create_note()["object"], "content": "<p>forged</p>"}},
        {"id": f"{B}/users/dogwood#updates/2", "type": "Update", "actor": f"{B}/users/dogwood",
         "object": {"id": f"{B}/users/cedar", "type": "Person", "preferredUsername": "cedar", "name": "Forged",
                    "summary": "forged", "inbox": f"{B}/users/cedar/inbox"}},
        {"id": f"{B}/users/dogwood#deletes/1", "type": "Delete", "actor": f"{B}/users/dogwood",
         "object": note_uri},
        {"id": f"{B}/users/dogwood#deletes/2", "type": "Delete", "actor": f"{B}/users/dogwood",
         "object": {"id": note_uri, "type": "Tombstone"}},
        {"id": f"{B}/users/dogwood#deletes/3", "type": "Delete", "actor": f"{B}/users/dogwood",
         "object": f"{B}/users/cedar"},
        {"id": f"{B}/users/dogwood#undo/1", "type": "Undo", "actor": f"{B}/users/dogwood",
         "object": {"id": f"{B}/users/cedar/statuses/1/activity", "type": "Create", "actor": f"{B}/users/cedar"}},
    ]
    sent = len(pair.network.sent)
    for activity in forged:
        assert await send(pair, activity, signer="dogwood") == 202, activity["id"]
    await pair.drain()
    unchanged(before, await snapshot(pair))
    # cedar's profile was not re-fetched on dogwood's word
    assert not [s for s in pair.network.sent[sent:] if s.method == "GET" and s.url == f"{B}/users/cedar"]


async def test_a_partner_cannot_update_or_delete_our_own_posts_or_residents(pair: Pair) -> None:
    status, local = await pair.a.api("alder").post("/api/v1/statuses", json={"status": "Marché samedi"})
    assert status == 200
    await pair.drain()
    before = await snapshot(pair)
    items = await pair.a.count(InboxItem)
    forged = [
        {"id": f"{B}/users/cedar#updates/9", "type": "Update", "actor": f"{B}/users/cedar",
         "object": {"id": local["uri"], "type": "Note", "attributedTo": f"{A}/users/alder",
                    "content": "<p>forged</p>", "to": [PUBLIC]}},
        {"id": f"{B}/users/cedar#deletes/9", "type": "Delete", "actor": f"{B}/users/cedar", "object": local["uri"]},
        {"id": f"{B}/users/cedar#deletes/10", "type": "Delete", "actor": f"{B}/users/cedar",
         "object": f"{A}/users/alder"},
        {"id": f"{B}/users/cedar#updates/10", "type": "Update", "actor": f"{B}/users/cedar",
         "object": {"id": f"{A}/users/alder", "type": "Person", "name": "Forged", "inbox": f"{A}/users/alder/inbox"}},
    ]
    for activity in forged:
        assert await send(pair, activity) == 202, activity["id"]
    await pair.drain()
    unchanged(before, await snapshot(pair))
    assert await pair.a.count(InboxItem) == items + len(forged)  # received, then nothing done
    status, shown = await pair.a.api("birch").get(f"/api/v1/statuses/{local['id']}")
    assert status == 200 and "Marché samedi" in shown["content"]


async def test_create_of_a_note_written_by_someone_else_stores_nothing(pair: Pair) -> None:
    await known_cedar_note(pair)
    before = await snapshot(pair)
    forged = [  # cedar sends a Create of a note attributed to dogwood (same host), to alder (ours), to nobody
        create_note(note_id=f"{B}/users/dogwood/statuses/7", author=f"{B}/users/dogwood",
                    activity_id=f"{B}/users/cedar#creates/7"),
        create_note(note_id=f"{B}/users/cedar/statuses/8", author=f"{A}/users/alder",
                    activity_id=f"{B}/users/cedar#creates/8"),
        create_note(note_id=f"{B}/users/cedar/statuses/9", author=[f"{B}/users/dogwood", f"{B}/users/cedar"],
                    activity_id=f"{B}/users/cedar#creates/9"),
        create_note(note_id=f"{B}/users/cedar/statuses/10", author=None, activity_id=f"{B}/users/cedar#creates/10"),
    ]
    for activity in forged:
        assert await send(pair, activity) == 202, activity["id"]
    await pair.drain()
    unchanged(before, await snapshot(pair))


async def test_forged_accepts_and_rejects_change_no_follow(pair: Pair) -> None:
    """Accept/Reject of follows never sent, sent by someone else, or sent to someone else."""
    status, _ = await pair.a.api("alder").post(f"/api/v1/accounts/{await remote_id(pair, 'dogwood')}/follow")
    assert status == 200
    async with pair.a.sessionmaker() as session:
        follow = await session.scalar(select(Follow).where(Follow.state == "pending"))
    assert follow is not None
    before = await snapshot(pair)
    follow_doc = {"id": follow.uri, "type": "Follow", "actor": f"{A}/users/alder", "object": f"{B}/users/dogwood"}
    forged = [
        {"id": f"{B}/users/cedar#accepts/1", "type": "Accept", "actor": f"{B}/users/cedar", "object": follow.uri},
        {"id": f"{B}/users/cedar#accepts/2", "type": "Accept", "actor": f"{B}/users/cedar", "object": follow_doc},
        {"id": f"{B}/users/cedar#accepts/3", "type": "Accept", "actor": f"{B}/users/cedar",
         "object": {**follow_doc, "object": f"{B}/users/cedar"}},  # the embedded Follow lies about its target
        {"id": f"{B}/users/cedar#accepts/4", "type": "Accept", "actor": f"{B}/users/cedar",
         "object": {"id": f"{A}/users/birch#follows/404", "type": "Follow", "actor": f"{A}/users/birch",
                    "object": f"{B}/users/cedar"}},  # birch never asked
        {"id": f"{B}/users/cedar#rejects/1", "type": "Reject", "actor": f"{B}/users/cedar", "object": follow.uri},
    ]
    for activity in forged:
        assert await send(pair, activity) == 202, activity["id"]
    await drain(pair.ctx(pair.a))  # a.test's queues only: dogwood's real answer is never sent
    unchanged(before, await snapshot(pair))


async def remote_id(p: Pair, name: str) -> int:
    """a.test's id of b.test's `name`, resolved as a resident would (search with resolve)."""
    status, found = await p.a.api("alder").get("/api/v2/search", params={
        "q": f"@{name}@b.test", "resolve": "true", "type": "accounts"})
    assert status == 200 and found["accounts"], found
    return int(found["accounts"][0]["id"])


async def test_nul_or_lone_surrogate_in_an_activity_is_400_and_stores_nothing(pair: Pair) -> None:
    """A NUL (`\\u0000`: PostgreSQL cannot store it in a text) or a lone surrogate: 400 at the door."""
    assert await send(pair, create_note(activity_id=f"{B}/warm-nul")) == 202
    await pair.drain()
    before = await snapshot(pair)
    items = await pair.a.count(InboxItem)
    plain = orjson.dumps(create_note(activity_id=f"{B}/users/cedar/statuses/1/odd"))
    for body in (orjson.dumps(create_note(content="<p>a\u0000b</p>", activity_id=f"{B}/nul")),
                 plain.replace(b"bonjour", b"bon\\ud800jour"), plain.replace(b'"Note"', b'"No\\u0000te"')):
        assert await send(pair, None, body=body) == 400, body[:80]
    assert await send(pair, None, body=plain.replace(b"bonjour", b"bon\\\\u0000jour")) == 202  # an escaped backslash
    await pair.drain()
    assert await pair.a.count(InboxItem) == items + 1
    unchanged(before, await snapshot(pair))  # the accepted one is a Create of an already known note
