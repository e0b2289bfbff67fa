"""No N+1: a timeline page costs the same number of statements for 20 statuses as for 40, whatever the
statuses carry (boosts, mentions, tags, polls, media, the reader's favourites, bookmarks and pins)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from voisinage.models import db
from voisinage.server.keys import ENGINE

from .test_status_media import upload_photo


async def _post(rig: Any, who: str, **body: Any) -> dict[str, Any]:
    status, data = await rig.api(who).post("/api/v1/statuses", json=body)
    assert status == 200, data
    return data


async def _fill(rig: Any) -> None:
    """45 statuses of every kind in birch's home timeline (the village announces its members' posts)."""
    for i in range(45):
        kind = i % 5
        if kind == 0:
            made = await _post(rig, "alder", status=f"Vends vélo {i} #annonce @birch")
        elif kind == 1:
            made = await _post(rig, "alder", status=f"Sondage {i}", poll={"options": ["oui", "non"], "expires_in": 3600})
        elif kind == 2:
            photo = await upload_photo(rig, "alder")
            made = await _post(rig, "alder", status=f"Photo {i} #jardin", media_ids=[photo])
        elif kind == 3:
            made = await _post(rig, "birch", status=f"Mon message {i}")
            if i < 10:
                assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/pin"))[0] == 200
        else:
            made = await _post(rig, "alder", status=f"Aide demandée {i} #entraide")
        if i % 3 == 0:
            assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/favourite"))[0] == 200
        if i % 4 == 0:
            assert (await rig.api("birch").post(f"/api/v1/statuses/{made['id']}/bookmark"))[0] == 200


async def _statements(rig: Any, path: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    # SQLite's timelines read on the event loop's thread, through the loop reader's engine
    engines = db.all_engines(rig.app[ENGINE])
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        status, page = await rig.api("birch").get(path, params={"limit": str(limit)})
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert status == 200, page
    return len(seen), page


async def test_timeline_pages_of_20_and_40_cost_the_same_statements(rig):
    await _fill(rig)
    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public?local=true",
                 "/api/v1/timelines/tag/annonce", "/api/v1/accounts/{alder}/statuses"):
        path = path.format(alder=rig["alder"].id)
        await rig.api("birch").get(path, params={"limit": "1"})  # token cache warmed
        small, page20 = await _statements(rig, path, 20)
        large, page40 = await _statements(rig, path, 40)
        assert small == large, path
        assert 0 < small <= 16, (path, small)  # a bounded number: the page, then one per kind of relation
        expected = {"tag": 9, "accounts": 36}  # #annonce statuses; alder's statuses (birch wrote 9)
        wanted = next((n for key, n in expected.items() if key in path), 40)
        assert len(page20) == 20 if wanted >= 20 else len(page20) == wanted, path
        assert len(page40) == wanted, path
    # and the page really carries what the statements loaded
    _, home = await _statements(rig, "/api/v1/timelines/home", 40)
    shown = [s["reblog"] or s for s in home]
    assert any(s["poll"] for s in shown) and any(s["media_attachments"] for s in shown)
    assert any(s["favourited"] for s in shown) and any(s["bookmarked"] for s in shown)
    assert any(s["mentions"] for s in shown) and any(s["tags"] for s in shown)
    assert any(s["reblog"] for s in home) and any(s["pinned"] for s in shown)
