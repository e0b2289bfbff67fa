"""DESIGN.md's visibility table, both ways: who sees each kind of post, and who must not.

The scene: alder and birch live in north, cedar in south, dogwood in east. cedar follows alder;
dogwood follows the north village. Each resident follows their home village (registration does it).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from voisinage.models import audience
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.post import Post

RESIDENTS = ("alder", "birch", "cedar", "dogwood")


# --- helpers shared by the other test modules of this part ------------------------------------------

async def follow(rig: Any, follower: str, target_id: int, notify: bool = False) -> None:
    """An accepted follow, written directly (the follow endpoint belongs to another part)."""
    async with write_session(rig.sessionmaker) as session:
        session.add(Follow(follower_id=rig[follower].actor_id, target_id=target_id, state="accepted",
                           notify=notify))


async def post(rig: Any, who: str, text: str, **fields: Any) -> dict[str, Any]:
    status, body = await rig.api(who).post("/api/v1/statuses", json={"status": text, **fields})
    assert status == 200, body
    return body


async def home(rig: Any, who: str, **params: Any) -> list[dict[str, Any]]:
    status, body = await rig.api(who).get("/api/v1/timelines/home", params={"limit": "40", **params})
    assert status == 200, body
    return body


def shown_ids(statuses: list[dict[str, Any]]) -> set[str]:
    """The ids of the posts a page shows (a boost shows its original)."""
    return {(s["reblog"] or s)["id"] for s in statuses}


async def can_get(rig: Any, who: str, status_id: str) -> bool:
    status, _ = await rig.api(who).get(f"/api/v1/statuses/{status_id}")
    assert status in (200, 404)
    return status == 200


# --- the scene --------------------------------------------------------------------------------------

@pytest.fixture
async def scene(rig: Any) -> dict[str, str]:
    await follow(rig, "cedar", rig["alder"].actor_id)
    await follow(rig, "dogwood", rig.village_ids["north"])
    ids = {
        "public": (await post(rig, "alder", "Marché samedi #evenement", visibility="public"))["id"],
        "unlisted": (await post(rig, "alder", "Réunion du quartier #info", visibility="unlisted"))["id"],
        "private": (await post(rig, "alder", "Pour mes abonnés #info", visibility="private"))["id"],
        "direct": (await post(rig, "alder", "@dogwood un mot #info", visibility="direct"))["id"],
        "cedar_private": (await post(rig, "cedar", "@birch entre nous", visibility="private"))["id"],
    }
    return ids


WHO_SEES = {
    "public": {"alder", "birch", "cedar", "dogwood"},
    "unlisted": {"alder", "birch"},
    "private": {"alder", "cedar"},
    "direct": {"alder", "dogwood"},
    "cedar_private": {"cedar", "birch"},
}


async def test_each_visibility_is_seen_by_exactly_its_audience(rig, scene):
    for kind, post_id in scene.items():
        seen = {who for who in RESIDENTS if await can_get(rig, who, post_id)}
        assert seen == WHO_SEES[kind], kind


async def test_readers_are_exactly_those_who_can_see(rig, scene):
    """The inverse rule (fan-out) and the rule (reading) agree for every post x every local actor."""
    await post(rig, "birch", "Réponse", in_reply_to_id=scene["public"])
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{scene['public']}/reblog")
    assert status == 200
    async with rig.sessionmaker() as session:
        posts = list(await session.scalars(select(Post)))
        actors = list(await session.scalars(select(Actor.id).where(Actor.domain == "")))
        assert len(posts) >= 10  # the scene, its village announces, the reply, its announce, the boost
        for p in posts:
            readers = await audience.get_readers(session, p)
            for actor_id in actors:
                viewer = await audience.load_viewer(session, actor_id)
                assert await audience.can_see(session, viewer, p.id) == (actor_id in readers), (p.id, actor_id)


async def test_homes_follow_the_table(rig, scene):
    birch = await home(rig, "birch")
    cedar = await home(rig, "cedar")
    dogwood = await home(rig, "dogwood")
    alder = await home(rig, "alder")
    # alder sees all their own posts as originals.
    assert {scene[k] for k in ("public", "unlisted", "private", "direct")} <= {s["id"] for s in alder}
    # birch (north member) gets the village's announces of the public and unlisted posts, and the private
    # post of cedar that mentions them; never alder's private post.
    assert shown_ids(birch) == {scene["public"], scene["unlisted"], scene["cedar_private"]}
    # cedar follows alder: public and private, not the village-only post.
    assert shown_ids(cedar) >= {scene["public"], scene["private"]}
    assert scene["unlisted"] not in shown_ids(cedar) and scene["direct"] not in shown_ids(cedar)
    # dogwood follows the north village: its announce of the public post; and the direct message.
    assert shown_ids(dogwood) == {scene["public"], scene["direct"]}


async def test_a_village_follower_elsewhere_sees_the_announce_as_a_boost_by_the_village(rig, scene):
    dogwood = await home(rig, "dogwood")
    boost = next(s for s in dogwood if s["reblog"] and s["reblog"]["id"] == scene["public"])
    assert boost["account"]["group"] is True
    assert boost["account"]["username"] == "north"
    assert boost["reblog"]["account"]["username"] == "alder"
    assert boost["visibility"] == "public"
    assert boost["id"] != scene["public"]


async def test_unlisted_never_reaches_another_village_even_through_follows(rig, scene):
    await follow(rig, "cedar", rig.village_ids["north"])
    later = (await post(rig, "alder", "Encore pour le village #info", visibility="unlisted"))["id"]
    for post_id in (scene["unlisted"], later):
        assert not await can_get(rig, "cedar", post_id)
        assert not await can_get(rig, "dogwood", post_id)
        assert post_id not in shown_ids(await home(rig, "cedar"))
        for path in ("/api/v1/timelines/public", "/api/v1/timelines/public?local=true",
                     "/api/v1/timelines/tag/info"):
            status, body = await rig.api("cedar").get(path)
            assert status == 200 and post_id not in shown_ids(body)
    status, body = await rig.api("birch").get("/api/v1/timelines/tag/info")
    assert later in shown_ids(body)


async def test_public_posts_of_every_village_are_in_the_commune_timeline(rig, scene):
    south = (await post(rig, "cedar", "Bonjour du sud"))["id"]
    for who in RESIDENTS:
        status, body = await rig.api(who).get("/api/v1/timelines/public", params={"local": "true"})
        assert status == 200
        ids = [s["id"] for s in body]
        assert scene["public"] in ids and south in ids
        assert not {scene["unlisted"], scene["private"], scene["direct"]} & set(ids)
        assert all(s["reblog"] is None for s in body)


async def test_anonymous_requests_see_nothing(rig, scene):
    for path in (f"/api/v1/statuses/{scene['public']}", "/api/v1/timelines/public",
                 "/api/v1/timelines/home", "/api/v1/timelines/tag/info"):
        status, _ = await rig.api().get(path)
        assert status == 401


async def test_boosts_never_widen_an_audience(rig, scene):
    posts_before = await rig.count(Post)
    # cedar sees alder's private post (a follower) but cannot boost it.
    status, body = await rig.api("cedar").post(f"/api/v1/statuses/{scene['private']}/reblog")
    assert status == 422 and "error" in body
    # dogwood cannot see it at all; birch neither.
    for who in ("dogwood", "birch"):
        status, _ = await rig.api(who).post(f"/api/v1/statuses/{scene['private']}/reblog")
        assert status == 404
    # a direct message is never boosted, not even by its recipient or author.
    for who in ("dogwood", "alder"):
        status, _ = await rig.api(who).post(f"/api/v1/statuses/{scene['direct']}/reblog")
        assert status == 422
    # the village-only post: its members cannot boost it either.
    status, _ = await rig.api("birch").post(f"/api/v1/statuses/{scene['unlisted']}/reblog")
    assert status == 422
    assert await rig.count(Post) == posts_before
    # alder may boost their own private post, and the boost keeps its audience.
    status, boost = await rig.api("alder").post(f"/api/v1/statuses/{scene['private']}/reblog")
    assert status == 200 and boost["visibility"] == "private"
    assert await can_get(rig, "cedar", boost["id"])
    assert not await can_get(rig, "birch", boost["id"])
    assert not await can_get(rig, "dogwood", boost["id"])


async def test_a_boost_of_a_public_post_reaches_the_boosters_followers(rig, scene):
    await follow(rig, "dogwood", rig["cedar"].actor_id)
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{scene['public']}/reblog")
    assert status == 200
    assert boost["reblog"]["id"] == scene["public"] and boost["reblogged"] is True
    assert boost["account"]["username"] == "cedar"
    # dogwood already had the post through the north village's announce: shown once only.
    dogwood = await home(rig, "dogwood")
    assert [(s["reblog"] or s)["id"] for s in dogwood].count(scene["public"]) == 1
    assert await can_get(rig, "birch", boost["id"])


async def test_a_public_boost_reaches_a_follower_who_did_not_have_it(rig):
    await follow(rig, "dogwood", rig["cedar"].actor_id)
    original = await post(rig, "alder", "Vente de livres #annonce")
    assert original["id"] not in shown_ids(await home(rig, "dogwood"))
    status, boost = await rig.api("cedar").post(f"/api/v1/statuses/{original['id']}/reblog")
    assert status == 200
    dogwood = await home(rig, "dogwood")
    entry = next(s for s in dogwood if s["id"] == boost["id"])
    assert entry["reblog"]["id"] == original["id"] and entry["account"]["username"] == "cedar"
