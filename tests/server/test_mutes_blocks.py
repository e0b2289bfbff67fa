"""Blocks (the two see nothing of each other) and mutes (hidden from the muter, possibly for a while).

Everything goes through HTTP; the database is read to check what was stored and what was not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from voisinage.models import audience
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.mute_block import Block, Mute
from voisinage.models.notification import Notification
from voisinage.models.post import Post
from voisinage.models.timeline import HomeEntry

from .test_accounts import next_link
from .test_relationships import counters
from .test_visibility import can_get, post, shown_ids


async def act(rig: Any, who: str, verb: str, target: str, **body: Any) -> tuple[int, Any]:
    return await rig.api(who).post(f"/api/v1/accounts/{rig[target].id}/{verb}", json=body or None)


async def timeline(rig: Any, who: str, path: str) -> set[str]:
    status, body = await rig.api(who).get(path, params={"limit": "40"})
    assert status == 200, body
    return shown_ids(body) | {s["id"] for s in body}


async def notes_seen(rig: Any, who: str) -> list[tuple[str, str]]:
    status, body = await rig.api(who).get("/api/v1/notifications")
    assert status == 200
    return [(n["type"], n["account"]["username"]) for n in body]


# -- blocks ----------------------------------------------------------------------------------------------

async def test_a_block_ends_follows_both_ways_with_their_counters(rig):
    alder, cedar = rig["alder"].actor_id, rig["cedar"].actor_id
    before_alder, before_cedar = await counters(rig, alder), await counters(rig, cedar)
    assert (await act(rig, "alder", "follow", "cedar"))[0] == 200
    assert (await act(rig, "cedar", "follow", "alder"))[0] == 200
    theirs = await post(rig, "alder", "Bonjour à mes abonnés", visibility="private")
    assert int(theirs["id"]) in {e.post_id for e in await rig.rows(HomeEntry, HomeEntry.owner_id == cedar)}
    status, relationship = await act(rig, "cedar", "block", "alder")
    assert status == 200
    assert relationship["blocking"] is True and relationship["following"] is False
    assert relationship["followed_by"] is False and relationship["blocked_by"] is False
    assert await rig.count(Follow, Follow.follower_id.in_([alder, cedar]), Follow.target_id.in_([alder, cedar])) == 0
    assert await counters(rig, alder) == before_alder and await counters(rig, cedar) == before_cedar
    assert await rig.count(HomeEntry, HomeEntry.owner_id == cedar, HomeEntry.post_id == int(theirs["id"])) == 0
    _, seen = await rig.api("alder").get("/api/v1/accounts/relationships", params={"id[]": rig["cedar"].id})
    assert seen[0]["blocked_by"] is True and seen[0]["blocking"] is False
    # blocking again is harmless: still one row
    assert (await act(rig, "cedar", "block", "alder"))[0] == 200
    assert await rig.count(Block) == 1


async def test_no_follow_across_a_block_either_way(rig):
    assert (await act(rig, "cedar", "block", "alder"))[0] == 200
    follows = await rig.count(Follow)
    for who, target in (("alder", "cedar"), ("cedar", "alder")):
        status, body = await act(rig, who, "follow", target)
        assert status == 403 and body["error"] == "This action is not allowed"
    assert await rig.count(Follow) == follows
    assert await rig.count(Notification, Notification.kind.in_(["follow", "follow_request"])) == 0
    # after unblocking, following works again
    status, relationship = await act(rig, "cedar", "unblock", "alder")
    assert status == 200 and relationship["blocking"] is False
    assert (await act(rig, "alder", "follow", "cedar"))[0] == 200
    assert await rig.count(Follow) == follows + 1


async def test_blocked_users_see_nothing_of_each_other(rig):
    public = await post(rig, "alder", "Marché samedi #evenement")
    south = await post(rig, "cedar", "Bonjour du sud #evenement")
    cedar_reply = await post(rig, "cedar", "J'y serai", in_reply_to_id=public["id"])
    birch_post = await post(rig, "birch", "Vélo trouvé #perdu")
    alder_reply = await post(rig, "alder", "Merci !", in_reply_to_id=birch_post["id"])
    status, birch_boost = await rig.api("birch").post(f"/api/v1/statuses/{public['id']}/reblog")
    assert status == 200
    status, alder_boost = await rig.api("alder").post(f"/api/v1/statuses/{birch_post['id']}/reblog")
    assert status == 200
    status, _ = await rig.api("alder").post(f"/api/v1/statuses/{birch_post['id']}/favourite")
    assert status == 200
    assert await can_get(rig, "cedar", public["id"]) and await can_get(rig, "alder", south["id"])

    assert (await act(rig, "alder", "block", "cedar"))[0] == 200
    hidden_from_cedar = {public["id"], birch_boost["id"], alder_boost["id"], alder_reply["id"]}
    hidden_from_alder = {south["id"], cedar_reply["id"]}
    for post_id in hidden_from_cedar:
        assert not await can_get(rig, "cedar", post_id), post_id
    for post_id in hidden_from_alder:
        assert not await can_get(rig, "alder", post_id), post_id
    # the third party still sees both
    for post_id in hidden_from_cedar | hidden_from_alder:
        assert await can_get(rig, "birch", post_id)
    for who, hidden in (("cedar", hidden_from_cedar), ("alder", hidden_from_alder)):
        for path in ("/api/v1/timelines/home", "/api/v1/timelines/public", "/api/v1/timelines/public?local=true",
                     "/api/v1/timelines/tag/evenement", "/api/v1/timelines/tag/perdu"):
            assert not hidden & await timeline(rig, who, path), (who, path)
    # context: birch's post shows alder's reply to birch only; cedar cannot open alder's thread at all
    status, context = await rig.api("cedar").get(f"/api/v1/statuses/{birch_post['id']}/context")
    assert status == 200 and alder_reply["id"] not in {s["id"] for s in context["descendants"]}
    status, context = await rig.api("birch").get(f"/api/v1/statuses/{birch_post['id']}/context")
    assert alder_reply["id"] in {s["id"] for s in context["descendants"]}
    status, _ = await rig.api("cedar").get(f"/api/v1/statuses/{public['id']}/context")
    assert status == 404
    for path in ("favourited_by", "reblogged_by"):
        status, _ = await rig.api("cedar").get(f"/api/v1/statuses/{public['id']}/{path}")
        assert status == 404
    # the profile still answers, its statuses do not
    status, account = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}")
    assert status == 200 and account["username"] == "alder"
    status, statuses = await rig.api("cedar").get(f"/api/v1/accounts/{rig['alder'].id}/statuses")
    assert status == 200 and statuses == []


async def test_no_notifications_across_a_block(rig):
    assert (await act(rig, "alder", "follow", "cedar"))[0] == 200
    assert ("follow", "alder") in await notes_seen(rig, "cedar")
    assert (await act(rig, "cedar", "block", "alder"))[0] == 200
    assert ("follow", "alder") not in await notes_seen(rig, "cedar")
    mentions_before = await rig.count(Notification, Notification.kind == "mention")
    await post(rig, "alder", "@cedar tu viens ?")
    await post(rig, "cedar", "@alder non")
    assert await rig.count(Notification, Notification.kind == "mention") == mentions_before
    assert await notes_seen(rig, "alder") == []


async def test_readers_agree_with_the_rule_under_blocks(rig):
    """The inverse rule (fan-out, notifications) and the rule (reading) agree with blocks in place."""
    await act(rig, "cedar", "follow", "alder")
    public = await post(rig, "alder", "Marché samedi #evenement")
    await post(rig, "alder", "Pour mes abonnés", visibility="private")
    await post(rig, "cedar", "@birch entre nous", visibility="private")
    await post(rig, "birch", "Réponse", in_reply_to_id=public["id"])
    await rig.api("cedar").post(f"/api/v1/statuses/{public['id']}/reblog")
    await rig.api("dogwood").post(f"/api/v1/statuses/{public['id']}/reblog")
    await act(rig, "birch", "block", "cedar")
    await act(rig, "dogwood", "block", "alder")
    async with write_session(rig.sessionmaker) as session:  # a block of a village: its announces go
        session.add(Block(actor_id=rig["cedar"].actor_id, target_id=rig.village_ids["north"]))
    async with rig.sessionmaker() as session:
        posts = list(await session.scalars(select(Post)))
        actors = list(await session.scalars(select(Actor.id).where(Actor.domain == "")))
        hidden = 0
        for p in posts:
            readers = await audience.get_readers(session, p)
            for actor_id in actors:
                viewer = await audience.load_viewer(session, actor_id)
                sees = await audience.can_see(session, viewer, p.id)
                assert sees == (actor_id in readers), (p.id, actor_id)
                hidden += not sees
        assert hidden > 0
    assert public["id"] not in await timeline(rig, "dogwood", "/api/v1/timelines/public")


async def test_block_lists_page_with_a_link(rig):
    for target in ("alder", "birch", "dogwood"):
        assert (await act(rig, "cedar", "block", target))[0] == 200
    status, page = await rig.api("cedar").get("/api/v1/blocks", params={"limit": "2"})
    assert status == 200 and [a["username"] for a in page] == ["dogwood", "birch"]
    api = rig.api("cedar")
    status, page = await api.get("/api/v1/blocks", params={"limit": "2"})
    link = next_link(api.last.headers.get("Link"))
    assert link is not None
    status, rest = await api.get(link)
    assert status == 200 and [a["username"] for a in rest] == ["alder"]
    assert next_link(api.last.headers.get("Link")) is None
    status, mine = await rig.api("alder").get("/api/v1/blocks")
    assert status == 200 and mine == []


async def test_bad_blocks_change_nothing(rig):
    blocks, follows = await rig.count(Block), await rig.count(Follow)
    for path in ("/api/v1/accounts/999999/block", "/api/v1/accounts/abc/block", "/api/v1/accounts/999999/unblock"):
        status, body = await rig.api("alder").post(path)
        assert status == 404 and "error" in body
    status, body = await act(rig, "alder", "block", "alder")
    assert status == 403 and "error" in body
    status, _ = await rig.api().post(f"/api/v1/accounts/{rig['birch'].id}/block")
    assert status == 401
    assert await rig.count(Block) == blocks and await rig.count(Follow) == follows


# -- mutes -----------------------------------------------------------------------------------------------

async def test_a_mute_hides_the_account_from_the_muters_timelines_only(rig):
    status, relationship = await act(rig, "birch", "mute", "alder")
    assert status == 200 and relationship["muting"] is True and relationship["muting_notifications"] is True
    mine = await post(rig, "alder", "Marché samedi #evenement")
    south = await post(rig, "cedar", "Bonjour du sud #evenement")
    status, boost = await rig.api("alder").post(f"/api/v1/statuses/{south['id']}/reblog")
    assert status == 200
    assert south["id"] in await timeline(rig, "birch", "/api/v1/timelines/public")  # cedar is not muted
    status, cedar_boost = await rig.api("cedar").post(f"/api/v1/statuses/{mine['id']}/reblog")
    hidden = {mine["id"], boost["id"], cedar_boost["id"]}
    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public", "/api/v1/timelines/public?local=true",
                 "/api/v1/timelines/tag/evenement"):
        assert not hidden & await timeline(rig, "birch", path), path
    for path in ("/api/v1/timelines/public", "/api/v1/timelines/tag/evenement"):
        assert mine["id"] in await timeline(rig, "dogwood", path)  # others are not affected
    assert mine["id"] in await timeline(rig, "alder", "/api/v1/timelines/home")
    # the muter can still open the status; the muted account notices nothing
    assert await can_get(rig, "birch", mine["id"])
    _, seen = await rig.api("alder").get("/api/v1/accounts/relationships", params={"id[]": rig["birch"].id})
    assert seen[0]["blocked_by"] is False and "muting" in seen[0] and seen[0]["muting"] is False


async def test_mute_notifications_flag(rig):
    assert (await act(rig, "birch", "mute", "alder"))[0] == 200
    await post(rig, "alder", "@birch tu viens ?")
    assert await rig.count(Notification, Notification.recipient_id == rig["birch"].actor_id) == 1
    assert await notes_seen(rig, "birch") == []
    status, relationship = await act(rig, "birch", "mute", "alder", notifications=False)
    assert status == 200 and relationship["muting"] is True and relationship["muting_notifications"] is False
    assert await notes_seen(rig, "birch") == [("mention", "alder")]
    assert await rig.count(Mute) == 1


async def test_mute_with_duration_expires(rig):
    mine = await post(rig, "alder", "Marché samedi")
    status, relationship = await act(rig, "birch", "mute", "alder", duration=3600)
    assert status == 200 and relationship["muting"] is True
    [mute] = await rig.rows(Mute)
    assert dt.timedelta(minutes=59) < mute.expires_at - dt.datetime.now(dt.UTC) < dt.timedelta(minutes=61)
    status, listed = await rig.api("birch").get("/api/v1/mutes")
    assert status == 200 and [a["username"] for a in listed] == ["alder"] and listed[0]["mute_expires_at"]
    assert mine["id"] not in await timeline(rig, "birch", "/api/v1/timelines/home")
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Mute).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)))
    assert mine["id"] in await timeline(rig, "birch", "/api/v1/timelines/home")
    assert mine["id"] in await timeline(rig, "birch", "/api/v1/timelines/public")
    status, listed = await rig.api("birch").get("/api/v1/mutes")
    assert listed == []
    _, seen = await rig.api("birch").get("/api/v1/accounts/relationships", params={"id[]": rig["alder"].id})
    assert seen[0]["muting"] is False
    # a forever mute, then unmute
    status, _ = await act(rig, "birch", "mute", "alder", duration=0)
    assert status == 200 and (await rig.rows(Mute))[0].expires_at is None
    assert mine["id"] not in await timeline(rig, "birch", "/api/v1/timelines/home")
    status, relationship = await act(rig, "birch", "unmute", "alder")
    assert status == 200 and relationship["muting"] is False and await rig.count(Mute) == 0
    assert mine["id"] in await timeline(rig, "birch", "/api/v1/timelines/home")


async def test_mutes_list_pages(rig):
    for target in ("alder", "cedar", "dogwood"):
        assert (await act(rig, "birch", "mute", target))[0] == 200
    api = rig.api("birch")
    status, page = await api.get("/api/v1/mutes", params={"limit": "2"})
    assert status == 200 and [a["username"] for a in page] == ["dogwood", "cedar"]
    assert page[0]["mute_expires_at"] is None
    status, rest = await api.get(next_link(api.last.headers.get("Link")))
    assert [a["username"] for a in rest] == ["alder"]


async def test_bad_mutes_change_nothing(rig):
    for body in ({"duration": -1}, {"duration": "soon"}, {"notifications": "maybe"}, {"duration": 10 ** 12}):
        status, answer = await act(rig, "birch", "mute", "alder", **body)
        assert status == 422 and "error" in answer, body
    status, _ = await rig.api("birch").post("/api/v1/accounts/999999/mute")
    assert status == 404
    status, _ = await act(rig, "birch", "mute", "birch")
    assert status == 403
    assert await rig.count(Mute) == 0
