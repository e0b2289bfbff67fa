"""Lists: CRUD, members (followed accounts only), list timelines with replies policies, exclusivity."""

from __future__ import annotations

from typing import Any

from voisinage.models.lists import ListMember, UserList
from voisinage.server.services.filtering import exclusive_members

from .test_visibility import post


async def follow(rig: Any, who: str, target: str) -> None:
    status, body = await rig.api(who).post(f"/api/v1/accounts/{rig[target].id}/follow")
    assert status == 200 and body["following"], body


async def make_list(rig: Any, who: str, **fields: Any) -> dict[str, Any]:
    status, body = await rig.api(who).post("/api/v1/lists", json={"title": "Voisins", **fields})
    assert status == 200, body
    return body


async def test_list_crud_and_privacy(rig):
    api = rig.api("alder")
    created = await make_list(rig, "alder", replies_policy="followed", exclusive=True)
    assert created["title"] == "Voisins" and created["replies_policy"] == "followed" and created["exclusive"] is True
    status, body = await api.put(f"/api/v1/lists/{created['id']}", json={"title": "Rue", "exclusive": False})
    assert status == 200 and body["title"] == "Rue" and body["exclusive"] is False
    assert body["replies_policy"] == "followed"
    status, lists = await api.get("/api/v1/lists")
    assert status == 200 and [item["id"] for item in lists] == [created["id"]]
    other = rig.api("birch")
    assert (await other.get(f"/api/v1/lists/{created['id']}"))[0] == 404
    assert (await other.put(f"/api/v1/lists/{created['id']}", json={"title": "Mine"}))[0] == 404
    assert (await other.delete(f"/api/v1/lists/{created['id']}"))[0] == 404
    assert (await other.get(f"/api/v1/timelines/list/{created['id']}"))[0] == 404
    assert (await other.get("/api/v1/lists"))[1] == []
    assert (await rig.api().get("/api/v1/lists"))[0] == 401
    status, _ = await api.delete(f"/api/v1/lists/{created['id']}")
    assert status == 200 and await rig.count(UserList) == 0
    assert (await api.get(f"/api/v1/lists/{created['id']}"))[0] == 404


async def test_bad_list_input_stores_nothing(rig):
    api = rig.api("alder")
    for body in ({}, {"title": "  "}, {"title": "x" * 101}, {"title": "L", "replies_policy": "all"},
                 {"title": "L", "exclusive": "maybe"}):
        status, _ = await api.post("/api/v1/lists", json=body)
        assert status == 422, body
    assert await rig.count(UserList) == 0
    created = await make_list(rig, "alder")
    status, _ = await api.put(f"/api/v1/lists/{created['id']}", json={"replies_policy": "everyone"})
    assert status == 422
    assert (await rig.rows(UserList))[0].replies_policy == "list"
    assert (await api.put("/api/v1/lists/123456", json={"title": "x"}))[0] == 404
    assert (await api.get("/api/v1/lists/nope"))[0] == 404


async def test_members_must_be_followed(rig):
    api = rig.api("alder")
    item = await make_list(rig, "alder")
    path = f"/api/v1/lists/{item['id']}/accounts"
    status, _ = await api.post(path, json={"account_ids": [rig["birch"].id]})
    assert status == 422 and await rig.count(ListMember) == 0
    assert (await api.post(path, json={"account_ids": ["999999999"]}))[0] == 404
    assert (await api.post(path, json={}))[0] == 422
    assert await rig.count(ListMember) == 0
    await follow(rig, "alder", "birch")
    await follow(rig, "alder", "cedar")
    status, _ = await api.post(path, data={"account_ids[]": [rig["birch"].id, rig["cedar"].id]})
    assert status == 200 and await rig.count(ListMember) == 2
    status, members = await api.get(path)
    assert status == 200 and {m["id"] for m in members} == {rig["birch"].id, rig["cedar"].id}
    status, lists = await api.get(f"/api/v1/accounts/{rig['birch'].id}/lists")
    assert status == 200 and [x["id"] for x in lists] == [item["id"]]
    assert (await rig.api("birch").get(f"/api/v1/accounts/{rig['birch'].id}/lists"))[1] == []
    assert (await rig.api("birch").post(path, json={"account_ids": [rig["alder"].id]}))[0] == 404
    status, _ = await api.delete(path, json={"account_ids": [rig["cedar"].id]})
    assert status == 200 and await rig.count(ListMember) == 1
    # birch cannot empty alder's list
    assert (await rig.api("birch").delete(path, json={"account_ids": [rig["birch"].id]}))[0] == 404
    assert await rig.count(ListMember) == 1


async def test_list_timeline_shows_members_posts_alder_may_see(rig):
    await follow(rig, "cedar", "dogwood")
    await follow(rig, "cedar", "alder")
    item = await make_list(rig, "cedar")
    status, _ = await rig.api("cedar").post(f"/api/v1/lists/{item['id']}/accounts",
                                            json={"account_ids": [rig["dogwood"].id, rig["alder"].id]})
    assert status == 200
    visible = await post(rig, "alder", "Bonjour le sud")
    unlisted = await post(rig, "alder", "Seulement le nord", visibility="unlisted")
    direct = await post(rig, "alder", "@birch secret", visibility="direct")
    dog = await post(rig, "dogwood", "Du côté est")
    birch = await post(rig, "birch", "Pas sur la liste")
    status, page = await rig.api("cedar").get(f"/api/v1/timelines/list/{item['id']}")
    assert status == 200
    ids = [s["id"] for s in page]
    assert ids == [dog["id"], visible["id"]]
    assert unlisted["id"] not in ids and direct["id"] not in ids and birch["id"] not in ids
    api = rig.api("cedar")
    status, page = await api.get(f"/api/v1/timelines/list/{item['id']}", params={"limit": "1"})
    assert [s["id"] for s in page] == [dog["id"]] and 'rel="next"' in api.last.headers["Link"]


async def test_replies_policy(rig):
    await follow(rig, "alder", "birch")
    await follow(rig, "alder", "cedar")
    item = await make_list(rig, "alder", replies_policy="list")
    await rig.api("alder").post(f"/api/v1/lists/{item['id']}/accounts", json={"account_ids": [rig["birch"].id]})
    to_cedar = await post(rig, "cedar", "Question ?")
    to_dogwood = await post(rig, "dogwood", "Autre question")
    reply_followed = await post(rig, "birch", "@cedar réponse", in_reply_to_id=to_cedar["id"])
    reply_stranger = await post(rig, "birch", "@dogwood réponse", in_reply_to_id=to_dogwood["id"])
    plain = await post(rig, "birch", "Rien à voir")
    self_reply = await post(rig, "birch", "Suite", in_reply_to_id=plain["id"])
    path = f"/api/v1/timelines/list/{item['id']}"

    async def shown(policy: str) -> set[str]:
        status, _ = await rig.api("alder").put(f"/api/v1/lists/{item['id']}", json={"replies_policy": policy})
        assert status == 200
        status, page = await rig.api("alder").get(path)
        assert status == 200
        return {s["id"] for s in page}

    assert await shown("list") == {plain["id"], self_reply["id"]}
    assert await shown("followed") == {plain["id"], self_reply["id"], reply_followed["id"]}
    assert await shown("none") == {plain["id"], self_reply["id"]}
    assert reply_stranger["id"] not in await shown("followed")


async def test_exclusive_members(rig):
    await follow(rig, "alder", "birch")
    await follow(rig, "alder", "cedar")
    exclusive = await make_list(rig, "alder", exclusive=True)
    normal = await make_list(rig, "alder", title="Autres")
    api = rig.api("alder")
    await api.post(f"/api/v1/lists/{exclusive['id']}/accounts", json={"account_ids": [rig["birch"].id]})
    await api.post(f"/api/v1/lists/{normal['id']}/accounts", json={"account_ids": [rig["cedar"].id]})
    async with rig.sessionmaker() as session:
        assert set(await session.scalars(exclusive_members(rig["alder"].actor_id))) == {rig["birch"].actor_id}
        assert set(await session.scalars(exclusive_members(rig["cedar"].actor_id))) == set()
