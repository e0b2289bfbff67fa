"""Two communes, a.test and b.test, federating in one process through the InProcessTransport:
follows of villages and residents, each visibility across the wire, replies, likes, boosts,
edits, deletions, undos and key rotation. Real signatures cross the seam.

Residents act through the client API only; the services federate by themselves (services/federate.py)
and `pair.drain()` runs both instances' queues. What crossed is read from `pair.network`, what arrived
from the receiving side's own API. Activities are built by hand only where a peer sends something odd.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from voisinage.federation import actors, outbox
from voisinage.federation.context import FEDERATION
from voisinage.federation.workers import ensure_instance_actor
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.delivery import Delivery
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.interaction import Favourite
from voisinage.models.notification import Notification
from voisinage.models.post import Post
from voisinage.models.tombstone import Tombstone

from ..rig.network import Sent
from ..rig.pair import Pair


async def known(commune: Any, handle: str) -> int:
    """The local id, on `commune`, of the remote account `handle` (fetched by WebFinger when unknown)."""
    ctx = commune.app[FEDERATION]
    await ensure_instance_actor(ctx)
    async with commune.sessionmaker() as session:  # fetches: no write lock held meanwhile
        fetched = await actors.resolve_handle(ctx, session, handle)
        await session.commit()
    async with commune.sessionmaker() as session:
        actor_id = await session.scalar(select(Actor.id).where(Actor.uri == fetched.uri))
    assert actor_id is not None
    return actor_id


async def follow(commune: Any, follower: str, handle: str) -> dict[str, Any]:
    """The resident `follower` of `commune` follows the remote account `handle` through the client API."""
    target_id = await known(commune, handle)
    code, body = await commune.api(follower).post(f"/api/v1/accounts/{target_id}/follow")
    assert code == 200, body
    return body


async def neighbour(commune: Any, slug: str, handle: str) -> None:
    """Village `slug` of `commune` follows the remote village `handle`, as `voisinage neighbour add` does."""
    ctx = commune.app[FEDERATION]
    target_id = await known(commune, handle)
    async with write_session(commune.sessionmaker) as session:
        village = await session.scalar(select(Actor).where(Actor.username == slug, Actor.domain == ""))
        await outbox.request_follow(session, ctx, village, await session.get(Actor, target_id))


async def post(commune: Any, who: str, **status: Any) -> Post:
    """`who` posts through the client API (which federates it); the stored row."""
    code, body = await commune.api(who).post("/api/v1/statuses", json=status)
    assert code == 200, body
    row = await local_row(commune, Post, int(body["id"]))
    assert row is not None and row.uri == body["uri"]
    return row


async def home_uris(commune: Any, who: str) -> list[str]:
    code, body = await commune.api(who).get("/api/v1/timelines/home")
    assert code == 200, body
    return [(s.get("reblog") or s)["uri"] for s in body]


async def public_uris(commune: Any, who: str) -> list[str]:
    code, body = await commune.api(who).get("/api/v1/timelines/public")
    assert code == 200, body
    return [(s.get("reblog") or s)["uri"] for s in body]


async def notifications(commune: Any, who: str) -> list[tuple[str, str | None]]:
    """(type, status uri) of `who`'s notifications, through the client API."""
    code, body = await commune.api(who).get("/api/v1/notifications")
    assert code == 200, body
    return [(n["type"], (n.get("status") or {}).get("uri")) for n in body]


async def link_state(commune: Any, follower: str, target: str) -> str | None:
    """The state of the follow between the actors named `follower` and `target` (any domain) on `commune`."""
    async with commune.sessionmaker() as session:
        ids = {}
        for name in (follower, target):
            ids[name] = list(await session.scalars(select(Actor.id).where(Actor.username == name)))
        return await session.scalar(select(Follow.state).where(
            Follow.follower_id.in_(ids[follower]), Follow.target_id.in_(ids[target])))


async def neighbours(p: Pair) -> None:
    """b.test's south village follows a.test's north village (a neighbour link), accepted."""
    await neighbour(p.b, "south", "@north@a.test")
    await p.drain()


def sent_since(p: Pair, mark: int, host: str | None = None, kind: str | None = None) -> list[Sent]:
    """The deliveries (POSTs) made after `mark` = len(p.network.sent), to `host`, of type `kind`."""
    later = p.network.sent[mark:]
    return [s for s in p.network.posts(host, kind) if any(s is t for t in later)]


async def remote_copy(commune: Any, uri: str) -> Post | None:
    rows = await commune.rows(Post, Post.uri == uri)
    return rows[0] if rows else None


async def local_row(commune: Any, model: Any, row_id: int) -> Any:
    async with commune.sessionmaker() as session:
        return await session.get(model, row_id)


async def test_village_follow_is_accepted_and_public_posts_arrive(pair: Pair) -> None:
    await neighbours(pair)
    assert await link_state(pair.b, "south", "north") == ACCEPTED
    assert await link_state(pair.a, "south", "north") == ACCEPTED
    assert len(pair.network.posts("a.test", "Follow")) == 1
    assert len(pair.network.posts("b.test", "Accept")) == 1

    mark = len(pair.network.sent)
    note = await post(pair.a, "alder", status="Marché samedi", visibility="public")
    await pair.drain()
    assert len(pair.network.posts("b.test", "Announce")) == 1  # once per shared inbox
    assert sent_since(pair, mark, kind="Create") == []  # the Announce already reaches b.test
    assert await pair.b.count(Post, Post.uri == note.uri) == 1
    assert note.uri in await home_uris(pair.b, "cedar")  # south follows north@a.test
    assert note.uri not in await home_uris(pair.b, "dogwood")  # east does not
    assert note.uri in await public_uris(pair.b, "cedar")
    assert note.uri not in await public_uris(pair.b, "dogwood")  # a remote village east does not follow


async def test_resident_follow_and_private_post_reach_only_followers(pair: Pair) -> None:
    relationship = await follow(pair.a, "alder", "@cedar@b.test")
    assert relationship["requested"] is True and relationship["following"] is False  # until the Accept
    await pair.drain()
    assert await link_state(pair.a, "alder", "cedar") == ACCEPTED
    assert await link_state(pair.b, "alder", "cedar") == ACCEPTED
    assert len(pair.network.posts("b.test", "Follow")) == 1
    assert len(pair.network.posts("a.test", "Accept")) == 1
    code, body = await pair.a.api("alder").get("/api/v1/accounts/relationships",
                                               params={"id": str(await known(pair.a, "@cedar@b.test"))})
    assert code == 200 and body[0]["following"] is True, body

    mark = len(pair.network.sent)
    note = await post(pair.b, "cedar", status="Pour mes abonnés", visibility="private")
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Create")] == ["a.test"]
    assert sent_since(pair, mark, kind="Announce") == []
    copy = await remote_copy(pair.a, note.uri)
    assert copy is not None and copy.visibility == "private"
    assert note.uri in await home_uris(pair.a, "alder")
    assert note.uri not in await home_uris(pair.a, "birch")  # not a follower: may not see it
    assert note.uri not in await public_uris(pair.a, "birch")
    code, _ = await pair.a.api("birch").get(f"/api/v1/statuses/{copy.id}")
    assert code == 404
    code, body = await pair.a.api("alder").get(f"/api/v1/statuses/{copy.id}")
    assert code == 200 and body["visibility"] == "private", body


async def test_unlisted_never_leaves(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")
    await neighbours(pair)
    mark = len(pair.network.sent)
    note = await post(pair.a, "alder", status="Entre nous du quartier", visibility="unlisted")
    await pair.drain()
    assert pair.network.sent[mark:] == []
    assert await remote_copy(pair.b, note.uri) is None
    assert note.uri not in await home_uris(pair.b, "cedar")


async def test_direct_goes_only_to_the_mentioned(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")  # a follower must not get a direct post
    await follow(pair.a, "birch", "@dogwood@b.test")  # so that a.test knows dogwood
    await pair.drain()
    mark = len(pair.network.sent)
    note = await post(pair.a, "alder", status="@dogwood@b.test Un mot pour toi", visibility="direct")
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark)] == ["b.test"]  # one Create, to the mentioned only
    assert [s.json["type"] for s in sent_since(pair, mark)] == ["Create"]
    copy = await remote_copy(pair.b, note.uri)
    assert copy is not None and copy.visibility == "direct"
    assert note.uri not in await home_uris(pair.b, "cedar")
    code, _ = await pair.b.api("cedar").get(f"/api/v1/statuses/{copy.id}")
    assert code == 404
    code, _ = await pair.b.api("dogwood").get(f"/api/v1/statuses/{copy.id}")
    assert code == 200
    kinds = {n.kind for n in await pair.b.rows(Notification, Notification.post_id == copy.id)}
    assert kinds == {"mention"}
    assert ("mention", note.uri) in await notifications(pair.b, "dogwood")
    assert all(uri != note.uri for _, uri in await notifications(pair.b, "cedar"))


async def test_partner_allow_list_both_ways(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    assert await link_state(pair.a, "cedar", "alder") == ACCEPTED
    assert await link_state(pair.b, "alder", "cedar") == ACCEPTED
    await pair.partner(pair.a, "b.test", on=False)

    before = await pair.a.count(Delivery)
    mark = len(pair.network.sent)
    await post(pair.a, "alder", status="Rien vers b", visibility="private")
    assert await pair.a.count(Delivery) == before  # a.test sends nothing to a non-partner
    items = await pair.a.count(InboxItem)
    note = await post(pair.b, "cedar", status="Refusé chez a", visibility="public")  # b.test still delivers
    await pair.drain()
    assert sent_since(pair, mark, "b.test") == []
    refused = sent_since(pair, mark, "a.test", "Create")
    assert refused and all(s.status == 401 for s in refused)  # a.test refuses
    assert await pair.a.count(InboxItem) == items
    assert await remote_copy(pair.a, note.uri) is None


async def test_reply_and_notification_come_back(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair.a, "alder", status="Qui vient samedi ?", visibility="public")
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    assert copy is not None
    mark = len(pair.network.sent)
    reply = await post(pair.b, "cedar", status="Moi !", visibility="public", in_reply_to_id=str(copy.id))
    await pair.drain()
    assert [s.json["type"] for s in sent_since(pair, mark, "a.test")] == ["Create"]  # one per shared inbox
    back = await remote_copy(pair.a, reply.uri)
    assert back is not None and back.in_reply_to_id == note.id
    original = await local_row(pair.a, Post, note.id)
    assert original.replies_count == 1
    notes = await pair.a.rows(Notification, Notification.recipient_id == pair.a["alder"].actor_id,
                              Notification.post_id == back.id)
    assert [n.kind for n in notes] == ["mention"]
    assert ("mention", reply.uri) in await notifications(pair.a, "alder")
    code, body = await pair.a.api("alder").get(f"/api/v1/statuses/{note.id}/context")
    assert code == 200 and [s["uri"] for s in body["descendants"]] == [reply.uri], body


async def test_like_and_undo_like(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair.a, "alder", status="Aimez-moi", visibility="public")
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    mark = len(pair.network.sent)
    code, body = await pair.b.api("cedar").post(f"/api/v1/statuses/{copy.id}/favourite")
    assert code == 200 and body["favourited"] is True, body
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Like")] == ["a.test"]
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 1
    code, body = await pair.a.api("alder").get(f"/api/v1/statuses/{note.id}")
    assert code == 200 and body["favourites_count"] == 1, body
    assert await pair.a.count(Notification, Notification.kind == "favourite",
                              Notification.recipient_id == pair.a["alder"].actor_id) == 1
    assert ("favourite", note.uri) in await notifications(pair.a, "alder")

    mark = len(pair.network.sent)
    code, body = await pair.b.api("cedar").post(f"/api/v1/statuses/{copy.id}/unfavourite")
    assert code == 200 and body["favourited"] is False, body
    await pair.drain()
    undos = sent_since(pair, mark, kind="Undo")
    assert [(s.host, s.json["object"]["type"]) for s in undos] == [("a.test", "Like")]
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 0
    assert await pair.a.count(Favourite) == 0
    code, body = await pair.a.api("alder").get(f"/api/v1/statuses/{note.id}")
    assert code == 200 and body["favourites_count"] == 0, body


async def test_update_then_delete_of_a_post(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair.a, "alder", status="Version 1", visibility="public")
    await pair.drain()
    mark = len(pair.network.sent)
    code, body = await pair.a.api("alder").put(f"/api/v1/statuses/{note.id}", json={"status": "Version 2"})
    assert code == 200, body
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Update")] == ["b.test"]
    copy = await remote_copy(pair.b, note.uri)
    assert "Version 2" in copy.content and copy.edited_at is not None
    code, shown = await pair.b.api("cedar").get(f"/api/v1/statuses/{copy.id}")
    assert code == 200 and "Version 2" in shown["content"] and shown["edited_at"], shown

    mark = len(pair.network.sent)
    code, _ = await pair.a.api("alder").delete(f"/api/v1/statuses/{note.id}")
    assert code == 200
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Delete")] == ["b.test"]
    assert await remote_copy(pair.b, note.uri) is None
    assert await pair.b.count(Tombstone, Tombstone.uri == note.uri) == 1
    code, _ = await pair.b.api("cedar").get(f"/api/v1/statuses/{copy.id}")
    assert code == 404
    assert note.uri not in await home_uris(pair.b, "cedar")


async def test_delete_before_create_is_remembered(pair: Pair) -> None:
    """A peer whose Delete overtakes its Create: the Delete and the Create are sent by hand, in that order."""
    mark = len(pair.network.sent)
    note = await post(pair.a, "alder", status="Éphémère", visibility="private")  # no follower yet
    await pair.drain()
    assert pair.network.sent[mark:] == []
    await follow(pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    ctx = pair.ctx(pair.a)
    async with write_session(pair.a.sessionmaker) as session:
        await outbox.publish_delete(session, ctx, await session.get(Post, note.id))
    await pair.drain()  # the Delete arrives first
    assert await pair.b.count(Tombstone, Tombstone.uri == note.uri) == 1
    async with write_session(pair.a.sessionmaker) as session:
        await outbox.publish_post(session, ctx, await session.get(Post, note.id))
    await pair.drain()  # then the Create: not resurrected
    assert await remote_copy(pair.b, note.uri) is None
    assert note.uri not in await home_uris(pair.b, "cedar")


async def test_undo_follow(pair: Pair) -> None:
    await follow(pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar_b = pair.b["cedar"].actor_id
    assert (await local_row(pair.b, Actor, cedar_b)).followers_count >= 1
    cedar_on_a = await known(pair.a, "@cedar@b.test")
    mark = len(pair.network.sent)
    code, body = await pair.a.api("alder").post(f"/api/v1/accounts/{cedar_on_a}/unfollow")
    assert code == 200 and body["following"] is False, body
    await pair.drain()
    undos = sent_since(pair, mark, kind="Undo")
    assert [(s.host, s.json["object"]["type"]) for s in undos] == [("b.test", "Follow")]
    assert await link_state(pair.a, "alder", "cedar") is None
    assert await link_state(pair.b, "alder", "cedar") is None
    assert (await local_row(pair.b, Actor, cedar_b)).followers_count == 0
    code, body = await pair.b.api("cedar").get(f"/api/v1/accounts/{cedar_b}")
    assert code == 200 and body["followers_count"] == 0, body


async def lock(commune: Any, who: str) -> None:
    async with write_session(commune.sessionmaker) as session:
        actor = await session.get(Actor, commune[who].actor_id)
        actor.locked = True


async def pending_request(p: Pair) -> int:
    """alder@a.test asks locked cedar@b.test; the id of alder on b.test, from cedar's follow requests."""
    await lock(p.b, "cedar")
    relationship = await follow(p.a, "alder", "@cedar@b.test")
    assert relationship["requested"] is True, relationship
    await p.drain()
    assert await link_state(p.a, "alder", "cedar") == "pending"
    assert await link_state(p.b, "alder", "cedar") == "pending"
    code, body = await p.b.api("cedar").get("/api/v1/follow_requests")
    assert code == 200 and [a["acct"] for a in body] == ["alder@a.test"], body
    assert ("follow_request", None) in await notifications(p.b, "cedar")
    return int(body[0]["id"])


async def test_reject_removes_the_pending_follow(pair: Pair) -> None:
    alder_on_b = await pending_request(pair)
    mark = len(pair.network.sent)
    code, body = await pair.b.api("cedar").post(f"/api/v1/follow_requests/{alder_on_b}/reject")
    assert code == 200, body
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Reject")] == ["a.test"]
    assert await link_state(pair.a, "alder", "cedar") is None
    assert await link_state(pair.b, "alder", "cedar") is None
    code, body = await pair.b.api("cedar").get("/api/v1/follow_requests")
    assert code == 200 and body == [], body


async def test_authorize_accepts_the_pending_follow(pair: Pair) -> None:
    alder_on_b = await pending_request(pair)
    mark = len(pair.network.sent)
    code, body = await pair.b.api("cedar").post(f"/api/v1/follow_requests/{alder_on_b}/authorize")
    assert code == 200 and body["followed_by"] is True, body
    await pair.drain()
    assert [s.host for s in sent_since(pair, mark, kind="Accept")] == ["a.test"]
    assert await link_state(pair.a, "alder", "cedar") == ACCEPTED
    assert await link_state(pair.b, "alder", "cedar") == ACCEPTED
    note = await post(pair.b, "cedar", status="Pour mes abonnés choisis", visibility="private")
    await pair.drain()
    assert note.uri in await home_uris(pair.a, "alder")


async def test_undo_announce_removes_the_boost(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair.a, "alder", status="Annoncé puis retiré", visibility="public")
    await pair.drain()
    announce = pair.network.posts("b.test", "Announce")[-1].json
    assert await pair.b.count(Post, Post.uri == announce["id"]) == 1
    from voisinage.federation import to_ap

    async with write_session(pair.a.sessionmaker) as session:  # a village withdrawing its Announce
        village = await session.scalar(select(Actor).where(Actor.uri == announce["actor"]))
        await outbox.publish(session, pair.ctx(pair.a), to_ap.undo_of(announce, village), village,
                             ["https://b.test/inbox"])
    await pair.drain()
    assert await pair.b.count(Post, Post.uri == announce["id"]) == 0
    assert await remote_copy(pair.b, note.uri) is not None  # the note itself stays


async def test_key_rotation(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    from voisinage.federation.local_keys import ensure_local_keys

    async with write_session(pair.b.sessionmaker) as session:  # cedar gets a new key pair
        cedar = await session.get(Actor, pair.b["cedar"].actor_id)
        cedar.private_key_pem = cedar.public_key_pem = None
        await ensure_local_keys(session, cedar)
    note = await post(pair.a, "alder", status="Après rotation", visibility="private")
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    assert copy is not None
    mark = len(pair.network.sent)
    code, _ = await pair.b.api("cedar").post(f"/api/v1/statuses/{copy.id}/favourite")
    assert code == 200
    await pair.drain()
    likes = sent_since(pair, mark, "a.test", "Like")
    assert len(likes) == 1 and likes[0].status == 202  # old key failed, refetched once
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 1
