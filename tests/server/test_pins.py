"""Pinned statuses: own public/unlisted/private statuses only, at most five, listed with pinned=true."""

from __future__ import annotations

from voisinage.models.pin import Pin

from .test_visibility import follow, post


async def test_pin_unpin_limit_and_listing(rig):
    posts = [await post(rig, "alder", f"Épinglé {i}") for i in range(6)]
    api = rig.api("alder")
    for body in posts[:5]:
        status, pinned = await api.post(f"/api/v1/statuses/{body['id']}/pin")
        assert status == 200 and pinned["pinned"] is True
    status, again = await api.post(f"/api/v1/statuses/{posts[0]['id']}/pin")
    assert status == 200 and again["pinned"] is True
    status, error = await api.post(f"/api/v1/statuses/{posts[5]['id']}/pin")
    assert status == 422 and "at most 5" in error["error"]
    assert await rig.count(Pin) == 5
    status, listed = await rig.api("birch").get(f"/api/v1/accounts/{rig['alder'].id}/statuses",
                                                params={"pinned": "true"})
    assert status == 200 and {s["id"] for s in listed} == {b["id"] for b in posts[:5]}
    assert all(s["pinned"] is False for s in listed)  # `pinned` is for the author's own statuses
    status, own = await api.get(f"/api/v1/accounts/{rig['alder'].id}/statuses", params={"pinned": "true"})
    assert all(s["pinned"] is True for s in own)
    status, unpinned = await api.post(f"/api/v1/statuses/{posts[0]['id']}/unpin")
    assert status == 200 and unpinned["pinned"] is False
    status, unpinned = await api.post(f"/api/v1/statuses/{posts[0]['id']}/unpin")
    assert status == 200 and unpinned["pinned"] is False
    status, _ = await api.post(f"/api/v1/statuses/{posts[5]['id']}/pin")
    assert status == 200
    assert await rig.count(Pin) == 5


async def test_others_and_direct_statuses_cannot_be_pinned(rig):
    theirs = await post(rig, "birch", "À birch")
    direct = await post(rig, "alder", "@birch secret", visibility="direct")
    hidden = await post(rig, "cedar", "Privé de cedar", visibility="private")
    api = rig.api("alder")
    status, _ = await api.post(f"/api/v1/statuses/{theirs['id']}/pin")
    assert status == 403
    status, _ = await api.post(f"/api/v1/statuses/{direct['id']}/pin")
    assert status == 422
    status, _ = await api.post(f"/api/v1/statuses/{hidden['id']}/pin")
    assert status == 404
    boost_status, boost = await rig.api("alder").post(f"/api/v1/statuses/{theirs['id']}/reblog")
    assert boost_status == 200
    status, _ = await api.post(f"/api/v1/statuses/{boost['id']}/pin")
    assert status == 422
    assert await rig.count(Pin) == 0


async def test_pinned_private_statuses_show_only_to_those_who_may_see_them(rig):
    private = await post(rig, "alder", "Pour mes abonnés", visibility="private")
    public = await post(rig, "alder", "Pour tous")
    for body in (private, public):
        status, _ = await rig.api("alder").post(f"/api/v1/statuses/{body['id']}/pin")
        assert status == 200
    await follow(rig, "cedar", rig["alder"].actor_id)
    path = f"/api/v1/accounts/{rig['alder'].id}/statuses"
    status, follower_sees = await rig.api("cedar").get(path, params={"pinned": "true"})
    assert {s["id"] for s in follower_sees} == {private["id"], public["id"]}
    status, stranger_sees = await rig.api("dogwood").get(path, params={"pinned": "true"})
    assert [s["id"] for s in stranger_sees] == [public["id"]]
