"""Editing a status (PUT /api/v1/statuses/:id): history, source, media, mentions, who is told."""

from __future__ import annotations

import asyncio
from typing import Any

from voisinage.models.media import MediaAttachment
from voisinage.models.notification import Notification
from voisinage.models.post import Mention, Post, PostTag
from voisinage.models.status_edit import StatusEdit
from voisinage.server.keys import EVENT_BUS

from .test_status_media import upload_photo
from .test_visibility import post


async def snapshot(rig: Any, post_id: str) -> tuple[Any, ...]:
    row = (await rig.rows(Post, Post.id == int(post_id)))[0]
    media = sorted(m.id for m in await rig.rows(MediaAttachment, MediaAttachment.post_id == int(post_id)))
    return (row.content, row.source, row.spoiler_text, row.sensitive, row.edited_at, tuple(media),
            await rig.count(StatusEdit), await rig.count(Mention), await rig.count(PostTag),
            await rig.count(Notification))


async def test_edit_text_spoiler_and_media_keeps_the_history(rig):
    first, second, third = [await upload_photo(rig, "alder", f"photo {i}") for i in range(3)]
    original = await post(rig, "alder", "Vélo à vendre #velo", media_ids=[first, second])
    api = rig.api("alder")
    status, edited = await api.put(f"/api/v1/statuses/{original['id']}", json={
        "status": "Vélo vendu #merci", "spoiler_text": "annonce", "media_ids": [second, third],
        "media_attributes": [{"id": second, "description": "le vélo, vendu", "focus": "0.5,-0.5"}]})
    assert status == 200, edited
    assert "Vélo vendu" in edited["content"] and edited["spoiler_text"] == "annonce"
    assert edited["sensitive"] is True and edited["edited_at"] is not None
    assert edited["visibility"] == original["visibility"]
    assert [m["id"] for m in edited["media_attachments"]] == [second, third]
    assert edited["media_attachments"][0]["description"] == "le vélo, vendu"
    assert edited["media_attachments"][0]["meta"]["focus"] == {"x": 0.5, "y": -0.5}
    assert [t["name"] for t in edited["tags"]] == ["merci"]
    detached = (await rig.rows(MediaAttachment, MediaAttachment.id == int(first)))[0]
    assert detached.post_id is None
    status, history = await api.get(f"/api/v1/statuses/{original['id']}/history")
    assert status == 200 and len(history) == 2
    assert "Vélo à vendre" in history[0]["content"] and history[0]["spoiler_text"] == ""
    assert [m["id"] for m in history[0]["media_attachments"]] == [first, second]
    assert history[0]["media_attachments"][1]["description"] == "photo 1"
    assert "Vélo vendu" in history[1]["content"]
    assert history[1]["media_attachments"][0]["description"] == "le vélo, vendu"
    assert history[0]["account"]["id"] == rig["alder"].id
    status, source = await api.get(f"/api/v1/statuses/{original['id']}/source")
    assert status == 200
    assert source == {"id": original["id"], "text": "Vélo vendu #merci", "spoiler_text": "annonce"}
    # others may read the history of a status they see, not its source
    status, history = await rig.api("birch").get(f"/api/v1/statuses/{original['id']}/history")
    assert status == 200 and len(history) == 2
    status, _ = await rig.api("birch").get(f"/api/v1/statuses/{original['id']}/source")
    assert status == 403


async def test_a_status_never_edited_has_a_one_version_history(rig):
    body = await post(rig, "alder", "Jamais modifié")
    status, history = await rig.api("birch").get(f"/api/v1/statuses/{body['id']}/history")
    assert status == 200 and len(history) == 1 and history[0]["content"] == body["content"]
    assert await rig.count(StatusEdit) == 0


async def test_only_the_author_edits_and_bad_edits_change_nothing(rig):
    body = await post(rig, "alder", "Original")
    private = await post(rig, "cedar", "Privé", visibility="private")
    others = await upload_photo(rig, "birch")
    before = await snapshot(rig, body["id"])
    status, _ = await rig.api("birch").put(f"/api/v1/statuses/{body['id']}", json={"status": "piraté"})
    assert status == 403
    status, _ = await rig.api("alder").put(f"/api/v1/statuses/{private['id']}", json={"status": "piraté"})
    assert status == 404
    status, _ = await rig.api().put(f"/api/v1/statuses/{body['id']}", json={"status": "piraté"})
    assert status == 401
    for payload in ({"status": ""}, {"status": "x" * 501}, {"status": "x", "media_ids": [others]},
                    {"status": "x", "language": "pas une langue"},
                    {"status": "x", "media_attributes": [{"id": others, "description": "non"}]},
                    {"status": "x", "poll": {"options": ["seule"], "expires_in": 600}}):
        status, error = await rig.api("alder").put(f"/api/v1/statuses/{body['id']}", json=payload)
        assert status == 422 and "error" in error, payload
    assert await snapshot(rig, body["id"]) == before
    assert (await rig.rows(Post, Post.id == int(body["id"])))[0].edited_at is None


async def test_boosters_are_told_and_new_mentions_notified(rig):
    body = await post(rig, "alder", "Fête samedi")
    status, _ = await rig.api("cedar").post(f"/api/v1/statuses/{body['id']}/reblog")
    assert status == 200
    status, _ = await rig.api("birch").post(f"/api/v1/statuses/{body['id']}/favourite")
    assert status == 200
    subscription = rig.app[EVENT_BUS].subscribe()
    status, _ = await rig.api("alder").put(f"/api/v1/statuses/{body['id']}",
                                           json={"status": "Fête dimanche, @dogwood@a.test"})
    assert status == 200
    kinds = []
    while ("status.update", int(body["id"])) not in kinds:
        event = await asyncio.wait_for(subscription.queue.get(), timeout=5)
        kinds.append((event.kind, event.object_id))
        if event.kind == "status.update":
            assert event.streams[:2] == ("public", "public:local")
    rig.app[EVENT_BUS].unsubscribe(subscription)
    updates = await rig.rows(Notification, Notification.kind == "update")
    assert [(n.recipient_id, n.post_id) for n in updates] == [(rig["cedar"].actor_id, int(body["id"]))]
    status, notes = await rig.api("cedar").get("/api/v1/notifications")
    assert status == 200 and notes[0]["type"] == "update" and "dimanche" in notes[0]["status"]["content"]
    status, _ = await rig.api("alder").put(f"/api/v1/statuses/{body['id']}", json={"status": "Fête lundi"})
    assert status == 200
    updates_after = await rig.rows(Notification, Notification.kind == "update")
    assert len(updates_after) == 1 and updates_after[0].id != updates[0].id  # the latest edit, once
    mentions = await rig.rows(Notification, Notification.kind == "mention")
    assert [n.recipient_id for n in mentions] == [rig["dogwood"].actor_id]
    # the village's announce is no resident's boost: the village is not told
    assert await rig.count(Notification, Notification.recipient_id == rig.village_ids["north"]) == 0
