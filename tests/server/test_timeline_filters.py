"""The reader's own choices applied to the home, commune and tag timelines: filters, exclusive lists,
posts with photos only."""

from __future__ import annotations

from typing import Any

from .test_filters import create_filter
from .test_lists import follow, make_list


async def _post(rig: Any, who: str, text: str, visibility: str = "public") -> str:
    status, body = await rig.api(who).post("/api/v1/statuses", json={"status": text, "visibility": visibility})
    assert status == 200, body
    return body["id"]


def _ids(statuses: list[dict[str, Any]]) -> set[str]:
    return {s["id"] for s in statuses} | {s["reblog"]["id"] for s in statuses if s.get("reblog")}


async def test_hide_and_warn_filters_apply_to_home_and_public_timelines(rig):
    await create_filter(rig, "birch", filter_action="hide", context=["home", "public"],
                        keywords_attributes=[{"keyword": "tondeuse", "whole_word": True}])
    await create_filter(rig, "birch", filter_action="warn", title="Animaux", context=["home"],
                        keywords_attributes=[{"keyword": "chat", "whole_word": True}])
    hidden = await _post(rig, "alder", "Prête ma tondeuse samedi")
    warned = await _post(rig, "alder", "Un chat perdu rue Haute")
    plain = await _post(rig, "alder", "Bonjour les voisins")

    status, home = await rig.api("birch").get("/api/v1/timelines/home")
    assert status == 200
    assert hidden not in _ids(home) and {warned, plain} <= _ids(home)
    flagged = [s for s in home if (s.get("reblog") or s)["id"] == warned][0]
    assert (flagged["reblog"] or flagged)["filtered"][0]["filter"]["title"] == "Animaux"

    _, local = await rig.api("birch").get("/api/v1/timelines/public", params={"local": "true"})
    assert hidden not in _ids(local)
    warned_public = [s for s in local if s["id"] == warned][0]
    assert warned_public["filtered"] == []  # the warn filter is for home only

    # someone without filters sees all three
    _, others = await rig.api("cedar").get("/api/v1/timelines/public", params={"local": "true"})
    assert {hidden, warned, plain} <= _ids(others)


async def test_members_of_an_exclusive_list_leave_the_home_timeline(rig):
    await follow(rig, "cedar", "alder")
    item = await make_list(rig, "cedar", exclusive=True)
    status, _ = await rig.api("cedar").post(f"/api/v1/lists/{item['id']}/accounts",
                                            json={"account_ids": [rig["alder"].id]})
    assert status == 200
    post = await _post(rig, "alder", "Réservé à la liste", "private")
    _, home = await rig.api("cedar").get("/api/v1/timelines/home")
    assert post not in _ids(home)
    _, listed = await rig.api("cedar").get(f"/api/v1/timelines/list/{item['id']}")
    assert post in _ids(listed)


async def test_only_media_keeps_posts_with_photos(rig):
    import io

    from aiohttp import FormData
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buffer, "JPEG")
    form = FormData()
    form.add_field("file", buffer.getvalue(), filename="p.jpg", content_type="image/jpeg")
    status, media = await rig.api("alder").post("/api/v2/media", data=form)
    assert status == 200, media
    status, with_photo = await rig.api("alder").post("/api/v1/statuses", json={
        "status": "Photo du marché", "media_ids": [media["id"]]})
    assert status == 200, with_photo
    without = await _post(rig, "alder", "Sans photo")
    _, page = await rig.api("birch").get("/api/v1/timelines/public", params={"local": "true", "only_media": "true"})
    assert _ids(page) == {with_photo["id"]}
    assert without not in _ids(page)
