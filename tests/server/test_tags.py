"""Followed hashtags (their posts come home, within who may see them) and featured tags."""

from __future__ import annotations

from typing import Any

from voisinage.models.tag_follow import FeaturedTag, TagFollow
from voisinage.models.timeline import HomeEntry

from .test_accounts import next_link
from .test_visibility import home, post, shown_ids


async def follow_tag(rig: Any, who: str, name: str, verb: str = "follow") -> dict[str, Any]:
    status, body = await rig.api(who).post(f"/api/v1/tags/{name}/{verb}")
    assert status == 200, body
    return body


# -- followed hashtags -----------------------------------------------------------------------------------

async def test_following_a_synonym_follows_the_category(rig):
    tag = await follow_tag(rig, "cedar", "zoekertje")
    assert tag["name"] == "zoekertje" and tag["following"] is True
    assert tag["url"].endswith("/tags/zoekertje") and len(tag["history"]) == 7
    status, annonce = await rig.api("cedar").get("/api/v1/tags/annonce")
    assert status == 200 and annonce["following"] is True
    status, other = await rig.api("alder").get("/api/v1/tags/annonce")
    assert other["following"] is False
    assert [t.name for t in await rig.rows(TagFollow)] == ["annonce"]
    # following again changes nothing
    await follow_tag(rig, "cedar", "Annonce")
    assert await rig.count(TagFollow) == 1


async def test_followed_tag_posts_arrive_home_within_the_audience(rig):
    await follow_tag(rig, "cedar", "annonce")
    public = await post(rig, "alder", "Vélo à vendre #zoekertje")
    unlisted = await post(rig, "alder", "Pour le quartier #annonce", visibility="unlisted")
    private = await post(rig, "alder", "Pour mes abonnés #annonce", visibility="private")
    other = await post(rig, "alder", "Rien à voir #info")
    seen = shown_ids(await home(rig, "cedar"))
    assert public["id"] in seen
    assert not {unlisted["id"], private["id"], other["id"]} & seen
    # shown once, even for a reader who also gets it through a follow of the village
    await follow_tag(rig, "birch", "annonce")
    again = await post(rig, "alder", "Table à donner #tegeef")
    birch_home = await home(rig, "birch")
    assert [(s["reblog"] or s)["id"] for s in birch_home].count(again["id"]) == 1
    assert await rig.count(HomeEntry, HomeEntry.owner_id == rig["cedar"].actor_id) >= 1
    # after unfollowing, new posts no longer come
    tag = await follow_tag(rig, "cedar", "annonce", "unfollow")
    assert tag["following"] is False and await rig.count(TagFollow, TagFollow.actor_id == rig["cedar"].actor_id) == 0
    later = await post(rig, "alder", "Chaise à vendre #annonce")
    assert later["id"] not in shown_ids(await home(rig, "cedar"))


async def test_a_blocked_author_does_not_arrive_through_a_tag(rig):
    await follow_tag(rig, "cedar", "annonce")
    status, _ = await rig.api("alder").post(f"/api/v1/accounts/{rig['cedar'].id}/block")
    assert status == 200
    blocked = await post(rig, "alder", "Vélo à vendre #annonce")
    assert blocked["id"] not in shown_ids(await home(rig, "cedar"))
    assert await rig.count(HomeEntry, HomeEntry.owner_id == rig["cedar"].actor_id,
                           HomeEntry.post_id == int(blocked["id"])) == 0


async def test_followed_tags_are_listed_and_paged(rig):
    for name in ("annonce", "info", "jardin"):
        await follow_tag(rig, "cedar", name)
    api = rig.api("cedar")
    status, page = await api.get("/api/v1/followed_tags", params={"limit": "2"})
    assert status == 200 and [t["name"] for t in page] == ["jardin", "info"]
    assert all(t["following"] for t in page)
    status, rest = await api.get(next_link(api.last.headers.get("Link")))
    assert [t["name"] for t in rest] == ["annonce"]
    status, none = await rig.api("alder").get("/api/v1/followed_tags")
    assert status == 200 and none == []


async def test_tag_history_counts_todays_posts(rig):
    await post(rig, "alder", "Un #jardin")
    await post(rig, "alder", "Deux #jardin")
    await post(rig, "birch", "Trois #jardin")
    status, tag = await rig.api("birch").get("/api/v1/tags/jardin")
    assert status == 200 and tag["history"][0]["uses"] == "3" and tag["history"][0]["accounts"] == "2"


async def test_bad_tag_names_change_nothing(rig):
    for name in ("%20", "123", "a-b", "x" * 101):
        status, body = await rig.api("cedar").post(f"/api/v1/tags/{name}/follow")
        assert status == 404 and "error" in body, name
        status, _ = await rig.api("cedar").get(f"/api/v1/tags/{name}")
        assert status == 404
    status, _ = await rig.api().post("/api/v1/tags/annonce/follow")
    assert status == 401
    assert await rig.count(TagFollow) == 0


# -- featured tags ---------------------------------------------------------------------------------------

async def test_featured_tags_count_public_posts(rig):
    await post(rig, "alder", "Vélo #annonce")
    await post(rig, "alder", "Chaise #zoekertje")
    await post(rig, "alder", "Secret #annonce", visibility="private")
    await post(rig, "alder", "Potager #jardin")
    status, featured = await rig.api("alder").post("/api/v1/featured_tags", json={"name": "#Annonce"})
    assert status == 200
    assert featured["name"] == "annonce" and featured["statuses_count"] == "2"
    assert featured["last_status_at"] and len(featured["last_status_at"]) == 10
    status, empty = await rig.api("alder").post("/api/v1/featured_tags", json={"name": "meteo"})
    assert status == 200 and empty["statuses_count"] == "0" and empty["last_status_at"] is None
    status, mine = await rig.api("alder").get("/api/v1/featured_tags")
    assert [t["name"] for t in mine] == ["annonce", "meteo"]
    status, theirs = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}/featured_tags")
    assert status == 200 and theirs == mine
    status, suggestions = await rig.api("alder").get("/api/v1/featured_tags/suggestions")
    assert status == 200 and [t["name"] for t in suggestions] == ["jardin"]
    status, body = await rig.api("alder").delete(f"/api/v1/featured_tags/{featured['id']}")
    assert status == 200 and body == {}
    assert [t.name for t in await rig.rows(FeaturedTag)] == ["meteo"]


async def test_bad_featured_tags_change_nothing(rig):
    for i in range(10):
        status, _ = await rig.api("alder").post("/api/v1/featured_tags", json={"name": f"tag{i}x"})
        assert status == 200
    status, body = await rig.api("alder").post("/api/v1/featured_tags", json={"name": "onzieme"})
    assert status == 422 and "error" in body
    status, body = await rig.api("birch").post("/api/v1/featured_tags", json={"name": "tag0x"})
    assert status == 200  # another resident may feature the same tag
    for bad in ({"name": "Tag0x"}, {"name": "pas un tag"}, {"name": ""}, {}, {"name": "x" * 200}):
        status, body = await rig.api("birch").post("/api/v1/featured_tags", json=bad)
        assert status == 422 and "error" in body, bad
    mine = await rig.rows(FeaturedTag, FeaturedTag.actor_id == rig["alder"].actor_id)
    status, _ = await rig.api("birch").delete(f"/api/v1/featured_tags/{mine[0].id}")
    assert status == 404
    status, _ = await rig.api("alder").delete("/api/v1/featured_tags/999999")
    assert status == 404
    status, _ = await rig.api("alder").get("/api/v1/accounts/999999/featured_tags")
    assert status == 404
    assert await rig.count(FeaturedTag) == 11
