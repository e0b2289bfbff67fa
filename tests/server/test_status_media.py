"""Photos on statuses: attaching uploads with media_ids[], the limits, and rendering them in batches."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from voisinage.models.media import MediaAttachment
from voisinage.models.post import Post
from voisinage.server.keys import ENGINE

from ..rig.statements import recorded_statements
from .test_visibility import follow, post


def jpeg(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


async def upload_photo(rig: Any, who: str, description: str = "") -> str:
    """Upload a Pillow-made JPEG through POST /api/v2/media; returns the media id."""
    from aiohttp import FormData

    body = FormData()
    if description:
        body.add_field("description", description)
    body.add_field("file", jpeg(), filename="photo.jpg", content_type="image/jpeg")
    status, entity = await rig.api(who).post("/api/v2/media", data=body)
    assert status in (200, 202), entity
    return entity["id"]


async def counts(rig: Any) -> tuple[int, int]:
    return (await rig.count(Post), await rig.count(MediaAttachment, MediaAttachment.post_id.is_not(None)))


async def test_post_with_one_photo_and_with_four(rig):
    one = await upload_photo(rig, "alder", "un vélo rouge")
    body = await post(rig, "alder", "Mon vélo", media_ids=[one])
    assert [m["id"] for m in body["media_attachments"]] == [one]
    assert body["media_attachments"][0]["description"] == "un vélo rouge"
    assert body["media_attachments"][0]["url"].startswith(rig.base_url + "/media/")
    four = [await upload_photo(rig, "alder") for _ in range(4)]
    body = await post(rig, "alder", "", media_ids=four)  # no text is fine with media
    assert [m["id"] for m in body["media_attachments"]] == four
    rows = await rig.rows(MediaAttachment, MediaAttachment.post_id == int(body["id"]))
    assert sorted(str(r.id) for r in rows) == sorted(four)
    status, seen = await rig.api("birch").get(f"/api/v1/statuses/{body['id']}")
    assert status == 200 and len(seen["media_attachments"]) == 4


async def test_bad_media_ids_are_refused_and_nothing_changes(rig):
    five = [await upload_photo(rig, "alder") for _ in range(5)]
    others = await upload_photo(rig, "birch")
    used = await upload_photo(rig, "alder")
    await post(rig, "alder", "déjà pris", media_ids=[used])
    before = await counts(rig)
    api = rig.api("alder")
    for payload in ({"status": "x", "media_ids": five}, {"status": "x", "media_ids": [others]},
                    {"status": "x", "media_ids": [used]}, {"status": "x", "media_ids": ["nope"]},
                    {"status": "x", "media_ids": ["99999999"]}, {"status": "", "media_ids": []},
                    {"status": "x", "media_ids": [five[0]], "poll": {"options": ["a", "b"], "expires_in": 600}}):
        status, body = await api.post("/api/v1/statuses", json=payload)
        assert status == 422 and "error" in body, payload
    assert await counts(rig) == before
    assert await rig.count(MediaAttachment, MediaAttachment.actor_id == rig["birch"].actor_id,
                           MediaAttachment.post_id.is_(None)) == 1


async def test_media_of_a_deleted_draft_are_reused(rig):
    photo = await upload_photo(rig, "alder")
    first = await post(rig, "alder", "brouillon", media_ids=[photo])
    status, deleted = await rig.api("alder").delete(f"/api/v1/statuses/{first['id']}")
    assert status == 200 and deleted["text"] == "brouillon"
    assert [m["id"] for m in deleted["media_attachments"]] == [photo]
    again = await post(rig, "alder", "au propre", media_ids=[photo])
    assert [m["id"] for m in again["media_attachments"]] == [photo]
    row = (await rig.rows(MediaAttachment, MediaAttachment.id == int(photo)))[0]
    assert row.post_id == int(again["id"])


async def test_media_are_rendered_in_timelines_with_one_query_per_page(rig):
    await follow(rig, "alder", rig["birch"].actor_id)
    photo_ids = []
    for i in range(41):
        photo = await upload_photo(rig, "birch")
        photo_ids.append(photo)
        await post(rig, "birch", f"photo {i}", media_ids=[photo])
    await rig.api("alder").get("/api/v1/timelines/home", params={"limit": "1"})  # token cache warmed
    with recorded_statements(rig.app[ENGINE]) as statements:
        status, page20 = await rig.api("alder").get("/api/v1/timelines/home", params={"limit": "20"})
        small = len(statements)
        statements.clear()
        status40, page40 = await rig.api("alder").get("/api/v1/timelines/home", params={"limit": "40"})
        large = len(statements)
    assert status == status40 == 200
    assert len(page20) == 20 and len(page40) == 40
    assert small == large, statements
    shown = [(s["reblog"] or s)["media_attachments"] for s in page40]
    assert all(len(m) == 1 for m in shown)
    assert {m[0]["id"] for m in shown} <= set(photo_ids)


async def test_only_media_lists_the_statuses_with_photos(rig):
    photo = await upload_photo(rig, "alder")
    with_photo = await post(rig, "alder", "avec photo", media_ids=[photo])
    await post(rig, "alder", "sans photo")
    status, listed = await rig.api("birch").get(f"/api/v1/accounts/{rig['alder'].id}/statuses",
                                                params={"only_media": "true"})
    assert status == 200 and [s["id"] for s in listed] == [with_photo["id"]]
