"""A resident's boost across the wire (Announce, Undo{Announce}) within the original's audience only,
and profile edits sent as Update of the actor. Two communes, real signatures (tests/rig/pair.py)."""

from __future__ import annotations

from voisinage.models.actor import Actor
from voisinage.models.notification import Notification
from voisinage.models.post import Post

from ..rig.pair import Pair
from .test_exchange import follow, home_uris, neighbour, neighbours, post, remote_copy, sent_since


async def boost(commune, who: str, post_id: int, undo: bool = False) -> dict:
    code, body = await commune.api(who).post(f"/api/v1/statuses/{post_id}/{'unreblog' if undo else 'reblog'}")
    assert code == 200, body
    return body


async def test_boost_of_a_public_post_reaches_followers_in_its_audience(pair: Pair) -> None:
    await neighbours(pair)  # b.test's south follows north: b.test is in north's audience
    await follow(pair.b, "cedar", "@birch@a.test")
    await pair.drain()
    note = await post(pair.a, "alder", status="Brocante dimanche", visibility="public")
    await pair.drain()
    mark = len(pair.network.sent)
    shown = await boost(pair.a, "birch", note.id)
    await pair.drain()
    sent = sent_since(pair, mark, kind="Announce")
    assert [s.host for s in sent] == ["b.test"] and sent[0].status == 202
    announce = sent[0].json
    assert announce["actor"] == "https://a.test/users/birch" and announce["id"] == shown["uri"]
    assert announce["object"]["id"] == note.uri and "proof" in announce["object"]
    assert "https://www.w3.org/ns/activitystreams#Public" not in str(announce)
    boost_on_b = await remote_copy(pair.b, shown["uri"])
    copy = await remote_copy(pair.b, note.uri)
    assert boost_on_b is not None and boost_on_b.reblog_of_id == copy.id
    assert (await pair.b.rows(Post, Post.id == copy.id))[0].reblogs_count == 1
    assert note.uri in await home_uris(pair.b, "cedar")

    mark = len(pair.network.sent)
    await boost(pair.a, "birch", note.id, undo=True)
    await pair.drain()
    undos = sent_since(pair, mark, kind="Undo")
    assert [(s.host, s.json["object"]["type"], s.json["object"]["id"]) for s in undos] == [
        ("b.test", "Announce", shown["uri"])]
    assert await remote_copy(pair.b, shown["uri"]) is None
    assert (await pair.b.rows(Post, Post.id == copy.id))[0].reblogs_count == 0
    assert await remote_copy(pair.b, note.uri) is not None  # the original stays


async def test_boost_never_widens(pair: Pair) -> None:
    """cedar@b.test follows birch, but nobody on b.test follows north or alder: birch's boost of
    alder's public post stays on a.test; so do boosts of village-only and private posts."""
    await follow(pair.b, "cedar", "@birch@a.test")
    await pair.drain()
    public = await post(pair.a, "alder", status="Pour le village et ses voisins", visibility="public")
    unlisted = await post(pair.a, "alder", status="Entre nous", visibility="unlisted")
    private = await post(pair.a, "birch", status="Pour mes abonnés", visibility="private")
    await pair.drain()
    mark = len(pair.network.sent)
    await boost(pair.a, "birch", public.id)
    code, _ = await pair.a.api("birch").post(f"/api/v1/statuses/{unlisted.id}/reblog")
    assert code == 422
    await boost(pair.a, "birch", private.id)  # own private post: allowed here, never announced
    await pair.drain()
    assert pair.network.sent[mark:] == []
    assert await remote_copy(pair.b, public.uri) is None
    assert await remote_copy(pair.b, unlisted.uri) is None
    mark = len(pair.network.sent)
    await boost(pair.a, "birch", public.id, undo=True)
    await pair.drain()
    assert pair.network.sent[mark:] == []  # no Undo where no Announce went


async def test_boost_of_a_partner_post_goes_to_its_author(pair: Pair) -> None:
    await neighbour(pair.a, "north", "@south@b.test")  # a.test receives south's public posts
    await pair.drain()
    note = await post(pair.b, "cedar", status="Vide-grenier à Sud", visibility="public")
    await pair.drain()
    copy = await remote_copy(pair.a, note.uri)
    assert copy is not None
    mark = len(pair.network.sent)
    shown = await boost(pair.a, "birch", copy.id)
    await pair.drain()
    sent = sent_since(pair, mark, kind="Announce")
    assert [s.host for s in sent] == ["b.test"] and sent[0].json["object"] == note.uri  # by id: not ours
    assert (await pair.b.rows(Post, Post.id == note.id))[0].reblogs_count == 1
    birch_on_b = (await pair.b.rows(Actor, Actor.uri == "https://a.test/users/birch"))[0]
    notes = await pair.b.rows(Notification, Notification.recipient_id == pair.b["cedar"].actor_id,
                              Notification.kind == "reblog")
    assert [(n.from_actor_id, n.post_id) for n in notes] == [(birch_on_b.id, note.id)]
    assert await remote_copy(pair.b, shown["uri"]) is not None


async def test_profile_edit_sends_update_to_followers_instances(pair: Pair) -> None:
    await follow(pair.b, "cedar", "@alder@a.test")
    await pair.drain()
    mark = len(pair.network.sent)
    code, body = await pair.a.api("alder").patch("/api/v1/accounts/update_credentials",
                                                  json={"display_name": "Alder Nouveau", "note": "Jardinier"})
    assert code == 200, body
    await pair.drain()
    updates = sent_since(pair, mark, kind="Update")
    assert [(s.host, s.json["object"]["type"]) for s in updates] == [("b.test", "Person")]
    assert updates[0].json["object"]["name"] == "Alder Nouveau" and updates[0].status == 202
    alder_on_b = (await pair.b.rows(Actor, Actor.uri == "https://a.test/users/alder"))[0]
    assert alder_on_b.display_name == "Alder Nouveau" and "Jardinier" in (alder_on_b.note or "")
    code, shown = await pair.b.api("cedar").get(f"/api/v1/accounts/{alder_on_b.id}")
    assert code == 200 and shown["display_name"] == "Alder Nouveau", shown

    mark = len(pair.network.sent)  # the resident's own settings are not in the actor document
    code, body = await pair.a.api("alder").patch("/api/v1/accounts/update_credentials",
                                                  json={"source": {"privacy": "unlisted"}})
    assert code == 200, body
    await pair.drain()
    assert pair.network.sent[mark:] == []


async def test_profile_edit_reaches_instances_following_the_village_only(pair: Pair) -> None:
    """birch has no follower on b.test, but south@b.test follows north: it shows birch's posts; a
    resident of east, which nobody on b.test follows, updates no one."""
    await neighbours(pair)
    mark = len(pair.network.sent)
    code, _ = await pair.a.api("birch").patch("/api/v1/accounts/update_credentials", json={"locked": True})
    assert code == 200
    await pair.a.add_resident("hazel", "east")
    code, _ = await pair.a.api("hazel").patch("/api/v1/accounts/update_credentials", json={"note": "Est"})
    assert code == 200
    await pair.drain()
    updates = sent_since(pair, mark, kind="Update")
    assert [(s.host, s.json["actor"]) for s in updates] == [("b.test", "https://a.test/users/birch")]
    assert updates[0].json["object"]["manuallyApprovesFollowers"] is True
