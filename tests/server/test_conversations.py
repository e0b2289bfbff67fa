"""Conversations: direct-message threads, one entry per thread for each participant."""

from __future__ import annotations

from typing import Any

from voisinage.models.conversation import Conversation

from .test_visibility import post


async def conversations(rig: Any, who: str) -> list[dict[str, Any]]:
    status, body = await rig.api(who).get("/api/v1/conversations")
    assert status == 200, body
    return body


async def test_a_direct_message_makes_a_conversation_for_both(rig):
    first = await post(rig, "alder", "@birch on se voit ?", visibility="direct")
    birch_sees = await conversations(rig, "birch")
    assert len(birch_sees) == 1
    assert [a["id"] for a in birch_sees[0]["accounts"]] == [rig["alder"].id]
    assert birch_sees[0]["last_status"]["id"] == first["id"] and birch_sees[0]["unread"] is True
    alder_sees = await conversations(rig, "alder")
    assert [a["id"] for a in alder_sees[0]["accounts"]] == [rig["birch"].id]
    assert alder_sees[0]["unread"] is False
    assert await conversations(rig, "cedar") == []
    reply = await post(rig, "birch", "@alder oui, samedi", visibility="direct", in_reply_to_id=first["id"])
    alder_sees = await conversations(rig, "alder")
    assert len(alder_sees) == 1 and alder_sees[0]["last_status"]["id"] == reply["id"]
    assert alder_sees[0]["unread"] is True
    assert await rig.count(Conversation) == 2
    # a public post creates no conversation
    await post(rig, "alder", "@birch en public")
    assert await rig.count(Conversation) == 2


async def test_read_and_delete(rig):
    first = await post(rig, "alder", "@birch message", visibility="direct")
    entry = (await conversations(rig, "birch"))[0]
    status, _ = await rig.api("alder").post(f"/api/v1/conversations/{entry['id']}/read")
    assert status == 404  # birch's conversation row is not alder's
    status, _ = await rig.api("cedar").delete(f"/api/v1/conversations/{entry['id']}")
    assert status == 404
    status, read = await rig.api("birch").post(f"/api/v1/conversations/{entry['id']}/read")
    assert status == 200 and read["unread"] is False and read["id"] == entry["id"]
    assert (await conversations(rig, "birch"))[0]["unread"] is False
    status, _ = await rig.api("birch").delete(f"/api/v1/conversations/{entry['id']}")
    assert status == 200
    assert await conversations(rig, "birch") == []
    assert len(await conversations(rig, "alder")) == 1
    # a new message in the thread brings it back
    await post(rig, "alder", "@birch tu es là ?", visibility="direct", in_reply_to_id=first["id"])
    back = await conversations(rig, "birch")
    assert len(back) == 1 and back[0]["id"] == entry["id"] and back[0]["unread"] is True
    status, _ = await rig.api("birch").delete("/api/v1/conversations/12345")
    assert status == 404


async def test_conversations_are_paged_with_link(rig):
    for name in ("birch", "cedar", "dogwood"):
        await post(rig, "alder", f"@{name}@a.test privé", visibility="direct")
    api = rig.api("alder")
    status, first = await api.get("/api/v1/conversations", params={"limit": "2"})
    assert status == 200 and len(first) == 2
    link = api.last.headers["Link"]
    assert 'rel="next"' in link
    next_url = link.split(">")[0][1 + len(rig.base_url):]
    status, second = await api.get(next_url)
    assert status == 200 and len(second) == 1
    names = [c["accounts"][0]["username"] for c in first + second]
    assert names == ["dogwood", "cedar", "birch"]


async def test_deleting_the_last_message_shows_the_previous_one(rig):
    first = await post(rig, "alder", "@birch premier", visibility="direct")
    reply = await post(rig, "birch", "@alder réponse", visibility="direct", in_reply_to_id=first["id"])
    assert (await conversations(rig, "alder"))[0]["last_status"]["id"] == reply["id"]
    status, _ = await rig.api("birch").delete(f"/api/v1/statuses/{reply['id']}")
    assert status == 200
    for who in ("alder", "birch"):
        entries = await conversations(rig, who)
        assert len(entries) == 1 and entries[0]["last_status"]["id"] == first["id"], who


async def test_a_mention_added_by_an_edit_joins_the_conversation(rig):
    first = await post(rig, "alder", "@birch entre nous", visibility="direct")
    status, _ = await rig.api("alder").put(f"/api/v1/statuses/{first['id']}",
                                           json={"status": "@birch @cedar@a.test entre nous trois"})
    assert status == 200
    cedar_sees = await conversations(rig, "cedar")
    assert len(cedar_sees) == 1
    assert sorted(a["username"] for a in cedar_sees[0]["accounts"]) == ["alder", "birch"]
    alder_sees = await conversations(rig, "alder")
    assert sorted(a["username"] for a in alder_sees[0]["accounts"]) == ["birch", "cedar"]
