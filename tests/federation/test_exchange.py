"""Two communes, a.test and b.test, federating in one process through the InProcessTransport:
follows of villages and residents, each visibility across the wire, replies, likes, boosts,
edits, deletions, undos and key rotation. Real signatures cross the seam."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from voisinage.federation import actors, outbox
from voisinage.federation.context import FEDERATION
from voisinage.federation.workers import ensure_instance_actor
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.follow import ACCEPTED, Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.interaction import Favourite
from voisinage.models.notification import Notification
from voisinage.models.post import Post
from voisinage.models.tombstone import Tombstone

from ..rig.pair import Pair, pair, pair_urls  # noqa: F401, F811  (fixtures)


async def follow(p: Pair, commune: Any, follower: str, handle: str) -> None:
    """`follower` (a username or village slug on `commune`) asks to follow the remote `handle`."""
    ctx = commune.app[FEDERATION]
    await ensure_instance_actor(ctx)
    async with commune.sessionmaker() as session:  # fetches: no write lock held meanwhile
        target = await actors.resolve_handle(ctx, session, handle)
        await session.commit()
    async with write_session(commune.sessionmaker) as session:
        me = await session.scalar(select(Actor).where(Actor.username == follower, Actor.domain == ""))
        target = await session.get(Actor, target.id)
        await outbox.request_follow(session, ctx, me, target)


async def post(p: Pair, commune: Any, who: str, **status: Any) -> Post:
    """`who` posts through the client API; then the outbox call the lead wires into posting."""
    code, body = await commune.api(who).post("/api/v1/statuses", json=status)
    assert code == 200, body
    async with write_session(commune.sessionmaker) as session:
        row = await session.get(Post, int(body["id"]))
        await outbox.publish_post(session, commune.app[FEDERATION], row)
    return row


async def home_uris(commune: Any, who: str) -> list[str]:
    code, body = await commune.api(who).get("/api/v1/timelines/home")
    assert code == 200, body
    return [(s.get("reblog") or s)["uri"] for s in body]


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
    await follow(p, p.b, "south", "@north@a.test")
    await p.drain()


async def test_village_follow_is_accepted_and_public_posts_arrive(pair: Pair) -> None:
    await neighbours(pair)
    assert await link_state(pair.b, "south", "north") == ACCEPTED
    assert await link_state(pair.a, "south", "north") == ACCEPTED
    assert pair.network.posts("a.test", "Follow") and pair.network.posts("b.test", "Accept")

    note = await post(pair, pair.a, "alder", status="Marché samedi", visibility="public")
    await pair.drain()
    assert len(pair.network.posts("b.test", "Announce")) == 1
    assert await pair.b.count(Post, Post.uri == note.uri) == 1
    assert note.uri in await home_uris(pair.b, "cedar")  # south follows north@a.test
    assert note.uri not in await home_uris(pair.b, "dogwood")  # east does not


async def remote_copy(commune: Any, uri: str) -> Post | None:
    rows = await commune.rows(Post, Post.uri == uri)
    return rows[0] if rows else None


async def local_row(commune: Any, model: Any, row_id: int) -> Any:
    async with commune.sessionmaker() as session:
        return await session.get(model, row_id)


async def test_resident_follow_and_private_post_reach_only_followers(pair: Pair) -> None:
    await follow(pair, pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    assert await link_state(pair.a, "alder", "cedar") == ACCEPTED
    assert await link_state(pair.b, "alder", "cedar") == ACCEPTED
    sent = len(pair.network.sent)
    note = await post(pair, pair.b, "cedar", status="Pour mes abonnés", visibility="private")
    await pair.drain()
    creates = [s for s in pair.network.posts(kind="Create") if s in pair.network.sent[sent:]]
    assert [s.host for s in creates] == ["a.test"]
    copy = await remote_copy(pair.a, note.uri)
    assert copy is not None and copy.visibility == "private"
    assert note.uri in await home_uris(pair.a, "alder")
    assert note.uri not in await home_uris(pair.a, "birch")  # not a follower: may not see it
    code, _ = await pair.a.api("birch").get(f"/api/v1/statuses/{copy.id}")
    assert code == 404


async def test_unlisted_never_leaves(pair: Pair) -> None:
    await follow(pair, pair.b, "cedar", "@alder@a.test")
    await neighbours(pair)
    sent = len(pair.network.sent)
    note = await post(pair, pair.a, "alder", status="Entre nous du quartier", visibility="unlisted")
    await pair.drain()
    assert pair.network.sent[sent:] == []
    assert await remote_copy(pair.b, note.uri) is None


async def test_direct_goes_only_to_the_mentioned(pair: Pair) -> None:
    await follow(pair, pair.b, "cedar", "@alder@a.test")  # a follower must not get a direct post
    await follow(pair, pair.a, "birch", "@dogwood@b.test")  # so that a.test knows dogwood
    await pair.drain()
    code, body = await pair.a.api("alder").post("/api/v1/statuses", json={
        "status": "Un mot pour toi", "visibility": "direct"})
    assert code == 200, body
    async with write_session(pair.a.sessionmaker) as session:
        from voisinage.models.post import Mention

        dogwood = await session.scalar(select(Actor).where(Actor.username == "dogwood", Actor.domain == "b.test"))
        session.add(Mention(post_id=int(body["id"]), actor_id=dogwood.id))  # what mention resolution stores
        await session.flush()
        await outbox.publish_post(session, pair.ctx(pair.a), await session.get(Post, int(body["id"])))
    await pair.drain()
    copy = await remote_copy(pair.b, body["uri"])
    assert copy is not None and copy.visibility == "direct"
    assert body["uri"] not in await home_uris(pair.b, "cedar")
    code, _ = await pair.b.api("cedar").get(f"/api/v1/statuses/{copy.id}")
    assert code == 404
    code, _ = await pair.b.api("dogwood").get(f"/api/v1/statuses/{copy.id}")
    assert code == 200
    kinds = {n.kind for n in await pair.b.rows(Notification, Notification.post_id == copy.id)}
    assert kinds == {"mention"}


async def test_partner_allow_list_both_ways(pair: Pair) -> None:
    await follow(pair, pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    await pair.partner(pair.a, "b.test", on=False)
    from voisinage.models.delivery import Delivery

    before = await pair.a.count(Delivery)
    await post(pair, pair.a, "alder", status="Rien vers b", visibility="private")
    assert await pair.a.count(Delivery) == before  # a.test sends nothing to a non-partner
    items = await pair.a.count(InboxItem)
    note = await post(pair, pair.b, "cedar", status="Refusé chez a", visibility="public")
    async with write_session(pair.b.sessionmaker) as session:  # b.test still delivers: a.test refuses
        alder = await session.scalar(select(Actor).where(Actor.username == "alder", Actor.domain == "a.test"))
        await outbox.publish(session, pair.ctx(pair.b), {"id": note.uri + "/activity", "type": "Create",
                                                          "actor": "https://b.test/users/cedar", "object": note.uri},
                             await session.get(Actor, note.author_id), [alder.inbox_uri])
    await pair.drain()
    assert [s.status for s in pair.network.posts("a.test")][-1] == 401
    assert await pair.a.count(InboxItem) == items


async def test_reply_and_notification_come_back(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair, pair.a, "alder", status="Qui vient samedi ?", visibility="public")
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    reply = await post(pair, pair.b, "cedar", status="Moi !", visibility="public", in_reply_to_id=str(copy.id))
    await pair.drain()
    back = await remote_copy(pair.a, reply.uri)
    assert back is not None and back.in_reply_to_id == note.id
    original = await local_row(pair.a, Post, note.id)
    assert original.replies_count == 1
    notes = await pair.a.rows(Notification, Notification.recipient_id == pair.a["alder"].actor_id,
                              Notification.post_id == back.id)
    assert [n.kind for n in notes] == ["mention"]


async def test_like_and_undo_like(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair, pair.a, "alder", status="Aimez-moi", visibility="public")
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    code, _ = await pair.b.api("cedar").post(f"/api/v1/statuses/{copy.id}/favourite")
    assert code == 200
    favourite = (await pair.b.rows(Favourite))[0]
    async with write_session(pair.b.sessionmaker) as session:
        await outbox.publish_like(session, pair.ctx(pair.b), await session.get(Favourite, favourite.id))
    await pair.drain()
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 1
    assert await pair.a.count(Notification, Notification.kind == "favourite",
                              Notification.recipient_id == pair.a["alder"].actor_id) == 1
    async with write_session(pair.b.sessionmaker) as session:
        await outbox.publish_undo_like(session, pair.ctx(pair.b), await session.get(Favourite, favourite.id))
    await pair.drain()
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 0
    assert await pair.a.count(Favourite) == 0


async def test_update_then_delete_of_a_post(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair, pair.a, "alder", status="Version 1", visibility="public")
    await pair.drain()
    code, body = await pair.a.api("alder").put(f"/api/v1/statuses/{note.id}", json={"status": "Version 2"})
    assert code == 200, body
    async with write_session(pair.a.sessionmaker) as session:
        await outbox.publish_update(session, pair.ctx(pair.a), await session.get(Post, note.id))
    await pair.drain()
    copy = await remote_copy(pair.b, note.uri)
    assert "Version 2" in copy.content and copy.edited_at is not None
    async with write_session(pair.a.sessionmaker) as session:
        await outbox.publish_delete(session, pair.ctx(pair.a), await session.get(Post, note.id))
    code, _ = await pair.a.api("alder").delete(f"/api/v1/statuses/{note.id}")
    assert code == 200
    await pair.drain()
    assert await remote_copy(pair.b, note.uri) is None
    assert await pair.b.count(Tombstone, Tombstone.uri == note.uri) == 1


async def test_delete_before_create_is_remembered(pair: Pair) -> None:
    await follow(pair, pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    code, body = await pair.a.api("alder").post("/api/v1/statuses", json={"status": "Éphémère",
                                                                            "visibility": "private"})
    assert code == 200
    ctx = pair.ctx(pair.a)
    async with write_session(pair.a.sessionmaker) as session:
        row = await session.get(Post, int(body["id"]))
        await outbox.publish_delete(session, ctx, row)
    await pair.drain()  # the Delete arrives first
    assert await pair.b.count(Tombstone, Tombstone.uri == body["uri"]) == 1
    async with write_session(pair.a.sessionmaker) as session:
        await outbox.publish_post(session, ctx, await session.get(Post, int(body["id"])))
    await pair.drain()  # then the Create: not resurrected
    assert await remote_copy(pair.b, body["uri"]) is None


async def test_undo_follow(pair: Pair) -> None:
    await follow(pair, pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    cedar_b = pair.b["cedar"].actor_id
    assert (await local_row(pair.b, Actor, cedar_b)).followers_count >= 1
    async with write_session(pair.a.sessionmaker) as session:
        row = await session.scalar(select(Follow).join(Actor, Actor.id == Follow.target_id)
                                   .where(Actor.username == "cedar"))
        await outbox.publish_undo_follow(session, pair.ctx(pair.a), row)
        await session.delete(row)
    await pair.drain()
    assert await link_state(pair.b, "alder", "cedar") is None


async def test_reject_removes_the_pending_follow(pair: Pair) -> None:
    async with write_session(pair.b.sessionmaker) as session:
        cedar = await session.get(Actor, pair.b["cedar"].actor_id)
        cedar.locked = True
    await follow(pair, pair.a, "alder", "@cedar@b.test")
    await pair.drain()
    assert await link_state(pair.a, "alder", "cedar") == "pending"
    assert await link_state(pair.b, "alder", "cedar") == "pending"
    async with write_session(pair.b.sessionmaker) as session:
        row = await session.scalar(select(Follow).where(Follow.target_id == pair.b["cedar"].actor_id,
                                                        Follow.state == "pending"))
        await outbox.publish_reject(session, pair.ctx(pair.b), row)
        await session.delete(row)
    await pair.drain()
    assert await link_state(pair.a, "alder", "cedar") is None


async def test_undo_announce_removes_the_boost(pair: Pair) -> None:
    await neighbours(pair)
    note = await post(pair, pair.a, "alder", status="Annoncé puis retiré", visibility="public")
    await pair.drain()
    announce = pair.network.posts("b.test", "Announce")[-1].json
    assert await pair.b.count(Post, Post.uri == announce["id"]) == 1
    from voisinage.federation import to_ap

    async with write_session(pair.a.sessionmaker) as session:
        village = await session.scalar(select(Actor).where(Actor.uri == announce["actor"]))
        await outbox.publish(session, pair.ctx(pair.a), to_ap.undo_of(announce, village), village,
                             ["https://b.test/inbox"])
    await pair.drain()
    assert await pair.b.count(Post, Post.uri == announce["id"]) == 0
    assert await remote_copy(pair.b, note.uri) is not None  # the note itself stays


async def test_key_rotation(pair: Pair) -> None:
    await follow(pair, pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    from voisinage.federation.local_keys import ensure_local_keys

    async with write_session(pair.b.sessionmaker) as session:  # cedar gets a new key pair
        cedar = await session.get(Actor, pair.b["cedar"].actor_id)
        cedar.private_key_pem = cedar.public_key_pem = None
        await ensure_local_keys(session, cedar)
    note = await post(pair, pair.a, "alder", status="Après rotation", visibility="private")
    await pair.drain()
    code, _ = await pair.b.api("cedar").post(
        f"/api/v1/statuses/{(await remote_copy(pair.b, note.uri)).id}/favourite")
    assert code == 200
    async with write_session(pair.b.sessionmaker) as session:
        favourite = (await session.scalars(select(Favourite))).one()
        await outbox.publish_like(session, pair.ctx(pair.b), favourite)
    await pair.drain()
    assert pair.network.posts("a.test", "Like")[-1].status == 202  # old key failed, refetched once
    assert (await local_row(pair.a, Post, note.id)).favourites_count == 1
