"""Follows between local accounts: follow/unfollow, relationships, followers/following lists.

Counters, notifications and home timelines are read from the database, as the rules say how they change.
"""

from __future__ import annotations

from typing import Any

import pytest

from voisinage.models.actor import Actor
from voisinage.models.follow import ACCEPTED, PENDING, Follow
from voisinage.models.notification import Notification
from voisinage.models.post import DIRECT, PRIVATE, PUBLIC, UNLISTED
from voisinage.models.timeline import HomeEntry

from .test_accounts import insert_boost, insert_post, next_link, post_and_announce


async def counters(rig: Any, actor_id: int) -> tuple[int, int]:
    """(followers_count, following_count) as stored."""
    async with rig.sessionmaker() as session:
        actor = await session.get(Actor, actor_id)
        return actor.followers_count, actor.following_count


async def home_of(rig: Any, name: str) -> set[int]:
    return {e.post_id for e in await rig.rows(HomeEntry, HomeEntry.owner_id == rig[name].actor_id)}


async def follow(rig: Any, who: str, target_id: Any, **params: str) -> tuple[int, Any]:
    return await rig.api(who).post(f"/api/v1/accounts/{target_id}/follow", json=params or None)


async def unfollow(rig: Any, who: str, target_id: Any) -> tuple[int, Any]:
    return await rig.api(who).post(f"/api/v1/accounts/{target_id}/unfollow")


# -- following a resident ----------------------------------------------------------------------------

async def test_follow_a_resident(rig):
    alder, birch = rig["alder"].actor_id, rig["birch"].actor_id
    status, relationship = await follow(rig, "alder", birch)
    assert status == 200
    assert relationship["id"] == str(birch)
    assert relationship["following"] is True and relationship["requested"] is False
    assert relationship["showing_reblogs"] is True and relationship["notifying"] is False
    rows = await rig.rows(Follow, Follow.follower_id == alder, Follow.target_id == birch)
    assert [r.state for r in rows] == [ACCEPTED]
    assert await counters(rig, birch) == (1, 1)
    assert await counters(rig, alder) == (0, 2)  # the home village and birch
    notes = await rig.rows(Notification, Notification.recipient_id == birch)
    assert [(n.kind, n.from_actor_id) for n in notes] == [("follow", alder)]
    _, seen_by_birch = await rig.api("birch").get("/api/v1/accounts/relationships", params={"id[]": str(alder)})
    assert seen_by_birch[0]["followed_by"] is True and seen_by_birch[0]["following"] is False


async def test_follow_again_changes_only_the_options_given(rig):
    birch = rig["birch"].actor_id
    await follow(rig, "alder", birch, reblogs="false", notify="true")
    _, relationship = await follow(rig, "alder", birch, notify="false")
    assert relationship["showing_reblogs"] is False and relationship["notifying"] is False
    _, relationship = await follow(rig, "alder", birch, reblogs="true")
    assert relationship["showing_reblogs"] is True and relationship["notifying"] is False
    assert await rig.count(Follow, Follow.target_id == birch) == 1
    assert await counters(rig, birch) == (1, 1)
    assert await rig.count(Notification, Notification.recipient_id == birch) == 1


async def test_two_taps_on_follow_make_one_follow(rig):
    import asyncio

    birch = rig["birch"].actor_id
    answers = await asyncio.gather(follow(rig, "alder", birch), follow(rig, "alder", birch))
    assert [status for status, _ in answers] == [200, 200]
    assert all(relationship["following"] for _, relationship in answers)
    assert await rig.count(Follow, Follow.target_id == birch) == 1
    assert await counters(rig, birch) == (1, 1)


async def test_follow_options_in_a_form(rig):
    status, relationship = await rig.api("alder").post(f"/api/v1/accounts/{rig['cedar'].id}/follow",
                                                       data={"reblogs": "false", "notify": "true"})
    assert status == 200
    assert relationship["showing_reblogs"] is False and relationship["notifying"] is True


async def test_unfollow_a_resident(rig):
    alder, birch = rig["alder"].actor_id, rig["birch"].actor_id
    await follow(rig, "alder", birch)
    status, relationship = await unfollow(rig, "alder", birch)
    assert status == 200 and relationship["following"] is False
    assert await rig.count(Follow, Follow.follower_id == alder, Follow.target_id == birch) == 0
    assert await counters(rig, birch) == (0, 1)
    assert await counters(rig, alder) == (0, 1)
    status, relationship = await unfollow(rig, "alder", birch)  # not following: a no-op
    assert status == 200 and relationship["following"] is False
    assert await counters(rig, birch) == (0, 1)


# -- villages and locked residents -----------------------------------------------------------------

async def test_follow_another_village_is_accepted_at_once(rig):
    north = rig.village_ids["north"]
    status, relationship = await follow(rig, "cedar", north)
    assert status == 200
    assert relationship["following"] is True and relationship["requested"] is False
    assert [f.state for f in await rig.rows(Follow, Follow.target_id == north,
                                            Follow.follower_id == rig["cedar"].actor_id)] == [ACCEPTED]
    assert await counters(rig, north) == (3, 0)
    assert await counters(rig, rig["cedar"].actor_id) == (0, 2)
    assert await rig.count(Notification, Notification.recipient_id == north) == 0


async def test_unfollow_the_home_village_is_allowed(rig):
    north, alder = rig.village_ids["north"], rig["alder"].actor_id
    status, relationship = await unfollow(rig, "alder", north)
    assert status == 200 and relationship["following"] is False
    assert await rig.count(Follow, Follow.follower_id == alder, Follow.target_id == north) == 0
    assert await counters(rig, north) == (1, 0)
    assert await counters(rig, alder) == (0, 0)
    _, relationship = await follow(rig, "alder", north)  # and coming back
    assert relationship["following"] is True and await counters(rig, north) == (2, 0)


async def test_follow_a_locked_resident_is_a_request(rig):
    alder, birch = rig["alder"].actor_id, rig["birch"].actor_id
    await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"locked": True})
    await insert_post(rig, "birch", visibility=PRIVATE)
    status, relationship = await follow(rig, "alder", birch)
    assert status == 200
    assert relationship["requested"] is True and relationship["following"] is False
    assert [f.state for f in await rig.rows(Follow, Follow.target_id == birch)] == [PENDING]
    notes = await rig.rows(Notification, Notification.recipient_id == birch)
    assert [(n.kind, n.from_actor_id) for n in notes] == [("follow_request", alder)]
    assert await counters(rig, birch) == (0, 1) and await counters(rig, alder) == (0, 1)
    assert await home_of(rig, "alder") == set()  # nothing is shown before approval
    _, seen_by_birch = await rig.api("birch").get("/api/v1/accounts/relationships", params={"id": str(alder)})
    assert seen_by_birch[0]["requested_by"] is True and seen_by_birch[0]["followed_by"] is False
    _, followers = await rig.api("birch").get(f"/api/v1/accounts/{birch}/followers")
    assert followers == []


async def test_withdrawing_a_follow_request(rig):
    birch = rig["birch"].actor_id
    await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"locked": True})
    await follow(rig, "alder", birch)
    status, relationship = await unfollow(rig, "alder", birch)
    assert status == 200 and relationship["requested"] is False
    assert await rig.count(Follow, Follow.target_id == birch) == 0
    assert await rig.count(Notification, Notification.recipient_id == birch) == 0
    assert await counters(rig, birch) == (0, 1)


# -- refusals --------------------------------------------------------------------------------------

async def test_following_oneself_is_refused(rig):
    before = await rig.count(Follow)
    status, body = await follow(rig, "alder", rig["alder"].actor_id)
    assert status == 403 and body["error"] == "This action is not allowed"
    assert await rig.count(Follow) == before
    assert await counters(rig, rig["alder"].actor_id) == (0, 1)


@pytest.mark.parametrize("target", ["4242", "not-an-id"])
async def test_following_an_unknown_account_is_404(rig, target):
    before = await rig.count(Follow)
    status, body = await follow(rig, "alder", target)
    assert status == 404 and body["error"]
    assert await rig.count(Follow) == before
    status, _ = await unfollow(rig, "alder", target)
    assert status == 404


async def test_follow_needs_the_follow_scope(rig):
    token = await rig.token_for(rig["alder"].actor_id, scopes="read")
    before = await rig.count(Follow)
    status, _ = await rig.api().post(f"/api/v1/accounts/{rig['birch'].id}/follow",
                                     headers={"Authorization": f"Bearer {token}"})
    assert status == 403 and await rig.count(Follow) == before


async def test_follow_with_a_bad_option_is_422(rig):
    before = await rig.count(Follow)
    status, _ = await follow(rig, "alder", rig["birch"].actor_id, reblogs="sometimes")
    assert status == 422 and await rig.count(Follow) == before


# -- home timeline backfill and removal --------------------------------------------------------------

async def test_following_fills_home_with_what_the_follower_may_see(rig):
    public = await insert_post(rig, "birch", visibility=PUBLIC)
    unlisted = await insert_post(rig, "birch", visibility=UNLISTED)
    private = await insert_post(rig, "birch", visibility=PRIVATE)
    await insert_post(rig, "birch", visibility=DIRECT, mentions=("alder",))
    await follow(rig, "cedar", rig["birch"].actor_id)
    # cedar lives in the south: not birch's village-only post; a follower: the followers-only one
    assert await home_of(rig, "cedar") == {public, private}
    await unfollow(rig, "cedar", rig["birch"].actor_id)
    assert await home_of(rig, "cedar") == set()
    await follow(rig, "alder", rig["birch"].actor_id)
    assert await home_of(rig, "alder") >= {public, unlisted, private}


async def test_backfill_skips_posts_already_shown_and_replies_to_strangers(rig):
    post, announce = await post_and_announce(rig, "birch", visibility=PUBLIC)
    stranger_post = await insert_post(rig, "dogwood")
    reply = await insert_post(rig, "birch", reply_to=stranger_post)
    own_reply = await insert_post(rig, "birch", reply_to=post)
    await follow(rig, "cedar", rig.village_ids["north"])
    assert await home_of(rig, "cedar") == {announce}
    await follow(rig, "cedar", rig["birch"].actor_id)
    home = await home_of(rig, "cedar")
    assert post not in home and reply not in home  # the announce already shows it; reply to a stranger
    assert home == {announce, own_reply}


async def test_backfill_without_reblogs(rig):
    original = await insert_post(rig, "cedar")
    await insert_boost(rig, "birch", original)
    own = await insert_post(rig, "birch")
    await follow(rig, "dogwood", rig["birch"].actor_id, reblogs="false")
    assert await home_of(rig, "dogwood") == {own}


async def test_village_follow_fills_home_with_its_announces_and_unfollow_removes_them(rig):
    _, public_announce = await post_and_announce(rig, "alder", visibility=PUBLIC)
    await post_and_announce(rig, "alder", visibility=UNLISTED)
    north = rig.village_ids["north"]
    await follow(rig, "cedar", north)
    assert await home_of(rig, "cedar") == {public_announce}
    await unfollow(rig, "cedar", north)
    assert await home_of(rig, "cedar") == set()


async def test_backfill_takes_the_latest_forty(rig):
    posts = [await insert_post(rig, "birch", text=f"n{i}") for i in range(42)]
    await follow(rig, "cedar", rig["birch"].actor_id)
    assert await home_of(rig, "cedar") == set(posts[2:])


# -- relationships ---------------------------------------------------------------------------------

async def test_relationships_in_the_order_asked(rig):
    await follow(rig, "alder", rig["cedar"].actor_id)
    ids = [rig["cedar"].id, "999", rig["birch"].id, str(rig.village_ids["north"]), "x", rig["cedar"].id]
    status, found = await rig.api("alder").get("/api/v1/accounts/relationships", params=[("id[]", i) for i in ids])
    assert status == 200
    assert [r["id"] for r in found] == [rig["cedar"].id, rig["birch"].id, str(rig.village_ids["north"])]
    assert [r["following"] for r in found] == [True, False, True]


async def test_relationships_with_plain_and_repeated_ids(rig):
    api = rig.api("alder")
    _, one = await api.get("/api/v1/accounts/relationships", params={"id": rig["birch"].id})
    assert [r["id"] for r in one] == [rig["birch"].id]
    _, two = await api.get("/api/v1/accounts/relationships", params=[("id", rig["birch"].id), ("id", rig["cedar"].id)])
    assert [r["id"] for r in two] == [rig["birch"].id, rig["cedar"].id]
    _, body = await api.get("/api/v1/accounts/relationships", json={"id": [rig["cedar"].id, rig["birch"].id]})
    assert [r["id"] for r in body] == [rig["cedar"].id, rig["birch"].id]
    _, none = await api.get("/api/v1/accounts/relationships")
    assert none == []


# -- followers and following ---------------------------------------------------------------------------

async def test_followers_pages_with_a_link_header(rig):
    north = rig.village_ids["north"]
    await follow(rig, "cedar", north)
    await follow(rig, "dogwood", north)
    api = rig.api("alder")
    status, first = await api.get(f"/api/v1/accounts/{north}/followers", params={"limit": "2"})
    assert status == 200
    assert [a["acct"] for a in first] == ["dogwood", "cedar"]  # newest follow first
    following = next_link(api.last.headers.get("Link"))
    assert following is not None and "limit=2" in following
    _, second = await api.get(following)
    assert sorted(a["acct"] for a in second) == ["alder", "birch"]
    assert next_link(api.last.headers.get("Link")) is None
    assert 'rel="prev"' in api.last.headers["Link"]


async def test_following_lists_accepted_follows_only(rig):
    await rig.api("birch").patch("/api/v1/accounts/update_credentials", json={"locked": True})
    await follow(rig, "alder", rig["birch"].actor_id)  # pending
    await follow(rig, "alder", rig["cedar"].actor_id)
    status, following = await rig.api("dogwood").get(f"/api/v1/accounts/{rig['alder'].id}/following")
    assert status == 200
    assert [a["acct"] for a in following] == ["cedar", "north"]
    assert following[1]["group"] is True


async def test_followers_of_an_unknown_account_is_404(rig):
    status, _ = await rig.api("alder").get("/api/v1/accounts/777/followers")
    assert status == 404
    status, _ = await rig.api("alder").get("/api/v1/accounts/777/following")
    assert status == 404


# -- with the posting service ------------------------------------------------------------------------

async def test_follow_after_posting_through_the_api(rig):
    status, posted = await rig.api("alder").post("/api/v1/statuses", json={"status": "Tondeuse à prêter"})
    assert status == 200, posted
    birch_home_before = await home_of(rig, "birch")  # birch sees it already, through the village
    await follow(rig, "birch", rig["alder"].actor_id)
    assert await home_of(rig, "birch") == birch_home_before  # shown once, not twice
    await follow(rig, "cedar", rig["alder"].actor_id)
    assert int(posted["id"]) in await home_of(rig, "cedar")
    _, listed = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}/statuses")
    assert [s["id"] for s in listed] == [posted["id"]]
    _, village = await rig.api("cedar").get(f"/api/v1/accounts/{rig.village_ids['north']}/statuses")
    assert [s["reblog"]["id"] for s in village] == [posted["id"]]
    _, home = await rig.api("cedar").get("/api/v1/timelines/home")
    assert [s["id"] for s in home] == [posted["id"]]
    await unfollow(rig, "cedar", rig["alder"].actor_id)
    _, home = await rig.api("cedar").get("/api/v1/timelines/home")
    assert home == []
