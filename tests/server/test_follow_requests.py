"""Follow requests of a locked account: list (paged), authorize, reject, and unlocking approves them all."""

from __future__ import annotations

from typing import Any

from voisinage.models.follow import ACCEPTED, PENDING, Follow
from voisinage.models.notification import Notification

from .test_accounts import next_link
from .test_relationships import counters, follow


async def lock(rig: Any, who: str, locked: bool = True) -> None:
    status, body = await rig.api(who).patch("/api/v1/accounts/update_credentials", json={"locked": locked})
    assert status == 200 and body["locked"] is locked


async def requests_of(rig: Any, who: str, **params: str) -> list[str]:
    status, body = await rig.api(who).get("/api/v1/follow_requests", params=params or None)
    assert status == 200, body
    return [a["username"] for a in body]


async def kinds(rig: Any, who: str) -> list[tuple[str, int]]:
    notes = await rig.rows(Notification, Notification.recipient_id == rig[who].actor_id)
    return sorted((n.kind, n.from_actor_id) for n in notes)


async def test_requests_are_listed_newest_first_and_paged(rig):
    await lock(rig, "birch")
    for who in ("alder", "cedar", "dogwood"):
        status, relationship = await follow(rig, who, rig["birch"].id)
        assert status == 200 and relationship["requested"] is True and relationship["following"] is False
    api = rig.api("birch")
    status, page = await api.get("/api/v1/follow_requests", params={"limit": "2"})
    assert status == 200 and [a["username"] for a in page] == ["dogwood", "cedar"]
    status, rest = await api.get(next_link(api.last.headers.get("Link")))
    assert [a["username"] for a in rest] == ["alder"]
    status, me = await api.get("/api/v1/accounts/verify_credentials")
    assert me["source"]["follow_requests_count"] == 3
    assert await requests_of(rig, "alder") == []


async def test_authorize_accepts_with_counters_and_no_new_notification(rig):
    await lock(rig, "birch")
    birch, alder = rig["birch"].actor_id, rig["alder"].actor_id
    post_status, mine = await rig.api("birch").post("/api/v1/statuses",
                                                      json={"status": "Pour mes abonnés", "visibility": "private"})
    assert post_status == 200
    await follow(rig, "alder", rig["birch"].id)
    assert await kinds(rig, "birch") == [("follow_request", alder)]
    before_birch, before_alder = await counters(rig, birch), await counters(rig, alder)
    status, relationship = await rig.api("birch").post(f"/api/v1/follow_requests/{rig['alder'].id}/authorize")
    assert status == 200
    assert relationship["id"] == rig["alder"].id and relationship["followed_by"] is True
    assert relationship["requested_by"] is False
    [row] = await rig.rows(Follow, Follow.follower_id == alder, Follow.target_id == birch)
    assert row.state == ACCEPTED
    assert await counters(rig, birch) == (before_birch[0] + 1, before_birch[1])
    assert await counters(rig, alder) == (before_alder[0], before_alder[1] + 1)
    assert await kinds(rig, "birch") == []  # the request's notification goes, no "follow" one comes
    assert await requests_of(rig, "birch") == []
    status, body = await rig.api("alder").get("/api/v1/timelines/home")
    assert mine["id"] in {s["id"] for s in body}  # the follower's home is backfilled


async def test_reject_removes_the_request(rig):
    await lock(rig, "birch")
    birch, cedar = rig["birch"].actor_id, rig["cedar"].actor_id
    await follow(rig, "cedar", rig["birch"].id)
    before = await counters(rig, birch)
    status, relationship = await rig.api("birch").post(f"/api/v1/follow_requests/{rig['cedar'].id}/reject")
    assert status == 200 and relationship["requested_by"] is False and relationship["followed_by"] is False
    assert await rig.count(Follow, Follow.follower_id == cedar, Follow.target_id == birch) == 0
    assert await counters(rig, birch) == before
    assert await kinds(rig, "birch") == []
    _, seen = await rig.api("cedar").get("/api/v1/accounts/relationships", params={"id[]": rig["birch"].id})
    assert seen[0]["requested"] is False and seen[0]["following"] is False


async def test_unlocking_accepts_every_waiting_request(rig):
    await lock(rig, "birch")
    birch = rig["birch"].actor_id
    await follow(rig, "alder", rig["birch"].id)
    await follow(rig, "dogwood", rig["birch"].id)
    before = await counters(rig, birch)
    await lock(rig, "birch", False)
    states = {f.state for f in await rig.rows(Follow, Follow.target_id == birch)}
    assert states == {ACCEPTED}
    assert await counters(rig, birch) == (before[0] + 2, before[1])
    assert await requests_of(rig, "birch") == []
    assert not [k for k, _ in await kinds(rig, "birch") if k == "follow_request"]


async def test_bad_answers_change_nothing(rig):
    await lock(rig, "birch")
    await follow(rig, "alder", rig["birch"].id)
    follows = [(f.follower_id, f.target_id, f.state) for f in await rig.rows(Follow)]
    api = rig.api("birch")
    for path in ("/api/v1/follow_requests/999999/authorize", "/api/v1/follow_requests/abc/reject",
                 f"/api/v1/follow_requests/{rig['cedar'].id}/authorize",  # cedar asked nothing
                 f"/api/v1/follow_requests/{rig['cedar'].id}/reject"):
        status, body = await api.post(path)
        assert status == 404 and "error" in body, path
    # someone else cannot answer birch's request
    status, _ = await rig.api("cedar").post(f"/api/v1/follow_requests/{rig['alder'].id}/authorize")
    assert status == 404
    status, _ = await rig.api().post(f"/api/v1/follow_requests/{rig['alder'].id}/authorize")
    assert status == 401
    assert [(f.follower_id, f.target_id, f.state) for f in await rig.rows(Follow)] == follows
    assert PENDING in {s for _, _, s in follows}
