"""Notifications: who is notified of what, the filters apps send, paging, dismiss and clear."""

from __future__ import annotations

from sqlalchemy import delete

from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.notification import Notification

from .test_timelines import next_link
from .test_visibility import follow, post


async def kinds(rig, who: str, **params) -> list[tuple[str, str]]:
    status, body = await rig.api(who).get("/api/v1/notifications", params=params)
    assert status == 200, body
    return [(n["type"], n["account"]["username"]) for n in body]


async def test_mentions_favourites_boosts_and_new_posts_notify(rig):
    await follow(rig, "cedar", rig["alder"].actor_id, notify=True)
    mention = await post(rig, "alder", "Bonjour @birch et @dogwood")
    await rig.api("cedar").post(f"/api/v1/statuses/{mention['id']}/favourite")
    await rig.api("dogwood").post(f"/api/v1/statuses/{mention['id']}/reblog")
    assert await kinds(rig, "birch") == [("mention", "alder")]
    assert await kinds(rig, "dogwood") == [("mention", "alder")]
    assert await kinds(rig, "cedar") == [("status", "alder")]
    assert await kinds(rig, "alder") == [("reblog", "dogwood"), ("favourite", "cedar")]
    status, body = await rig.api("alder").get("/api/v1/notifications")
    assert body[0]["status"]["id"] == mention["id"] and body[0]["status"]["reblog"] is None


async def test_no_notification_for_the_village_announce_nor_to_those_who_cannot_see(rig):
    await post(rig, "alder", "Rien de spécial")
    assert await kinds(rig, "alder") == []
    # A private post mentioning someone who may see it (mentioned) notifies them; direct too.
    await post(rig, "alder", "@cedar privé", visibility="private")
    assert await kinds(rig, "cedar") == [("mention", "alder")]
    # A follower with notifications on does not hear of a post they may not see (unlisted elsewhere).
    await follow(rig, "dogwood", rig["alder"].actor_id, notify=True)
    await post(rig, "alder", "village seulement", visibility="unlisted")
    assert await kinds(rig, "dogwood") == []


async def test_filters_types_exclude_types_and_account(rig):
    body = await post(rig, "alder", "Hello @birch")
    await post(rig, "cedar", "Coucou @alder")
    await rig.api("birch").post(f"/api/v1/statuses/{body['id']}/favourite")
    await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/favourite")
    assert await kinds(rig, "alder", **{"types[]": "mention"}) == [("mention", "cedar")]
    assert await kinds(rig, "alder", **{"exclude_types[]": ["mention", "follow"]}) == [
        ("favourite", "cedar"), ("favourite", "birch")]
    assert await kinds(rig, "alder", account_id=rig["cedar"].id) == [("favourite", "cedar"), ("mention", "cedar")]
    assert await kinds(rig, "alder", **{"types[]": "no_such_type"}) == []
    status, body = await rig.api("alder").get("/api/v1/notifications", params={"account_id": "abc"})
    assert status == 422


async def test_notifications_page_with_link_headers(rig):
    body = await post(rig, "alder", "Tout le monde aime")
    names = [f"voisin{i}" for i in range(5)]
    for name in names:
        await rig.add_resident(name, "east")
        await rig.api(name).post(f"/api/v1/statuses/{body['id']}/favourite")
    api = rig.api("alder")
    seen: list[str] = []
    url = "/api/v1/notifications?limit=2&types[]=favourite"
    while url:
        status, page = await api.get(url.replace(rig.base_url, ""))
        assert status == 200
        seen += [n["account"]["username"] for n in page]
        url = next_link(api)
        if url:
            assert "types%5B%5D=favourite" in url or "types[]=favourite" in url
    assert seen == list(reversed(names))


async def test_a_notification_goes_when_its_status_is_no_longer_visible(rig):
    await follow(rig, "cedar", rig["alder"].actor_id, notify=True)
    await post(rig, "alder", "Pour mes abonnés", visibility="private")
    assert await kinds(rig, "cedar") == [("status", "alder")]
    async with write_session(rig.sessionmaker) as session:
        await session.execute(delete(Follow).where(Follow.follower_id == rig["cedar"].actor_id,
                                                   Follow.target_id == rig["alder"].actor_id))
    assert await kinds(rig, "cedar") == []


async def test_get_dismiss_and_clear_only_ones_own(rig):
    await post(rig, "alder", "@birch @cedar salut")
    birch_note = (await rig.rows(Notification, Notification.recipient_id == rig["birch"].actor_id))[0]
    status, body = await rig.api("birch").get(f"/api/v1/notifications/{birch_note.id}")
    assert status == 200 and body["id"] == str(birch_note.id) and body["type"] == "mention"
    for method, path in (("GET", ""), ("POST", "/dismiss")):
        status, _ = await rig.api("cedar").call(method, f"/api/v1/notifications/{birch_note.id}{path}")
        assert status == 404
    for bad in ("abc", "999999", "-3"):
        status, _ = await rig.api("birch").post(f"/api/v1/notifications/{bad}/dismiss")
        assert status == 404
        status, _ = await rig.api("birch").get(f"/api/v1/notifications/{bad}")
        assert status == 404
    assert await rig.count(Notification) == 2
    status, body = await rig.api("birch").post(f"/api/v1/notifications/{birch_note.id}/dismiss")
    assert status == 200 and body == {}
    assert await rig.count(Notification, Notification.recipient_id == rig["birch"].actor_id) == 0
    status, body = await rig.api("cedar").post("/api/v1/notifications/clear")
    assert status == 200 and body == {}
    assert await rig.count(Notification) == 0


async def test_notifications_need_a_token(rig):
    status, _ = await rig.api().get("/api/v1/notifications")
    assert status == 401


async def test_odd_filter_values_are_harmless(rig):
    await post(rig, "alder", "@birch coucou")
    assert await kinds(rig, "birch", **{"exclude_types[]": "a\x00b"}) == [("mention", "alder")]
    assert await kinds(rig, "birch", **{"types[]": "a\x00b"}) == []
