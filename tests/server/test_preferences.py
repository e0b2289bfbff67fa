"""Preferences from the resident's account; trends and announcements in their real (empty) state."""

from __future__ import annotations

from sqlalchemy import update

from voisinage.models.db import write_session
from voisinage.models.resident import Resident


async def test_preferences_follow_the_resident_row(rig):
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(Resident).where(Resident.actor_id == rig["alder"].actor_id)
                              .values(default_visibility="unlisted", default_sensitive=True, default_language="nl"))
    status, body = await rig.api("alder").get("/api/v1/preferences")
    assert status == 200
    assert body == {"posting:default:visibility": "unlisted", "posting:default:sensitive": True,
                    "posting:default:language": "nl", "reading:expand:media": "default",
                    "reading:expand:spoilers": False, "reading:autoplay:gifs": False}
    status, body = await rig.api("birch").get("/api/v1/preferences")
    assert body["posting:default:visibility"] == "public" and body["posting:default:sensitive"] is False
    assert (await rig.api().get("/api/v1/preferences"))[0] == 401


async def test_trends_and_announcements_are_really_empty(rig):
    api = rig.api("cedar")
    for path in ("/api/v1/trends", "/api/v1/trends/tags", "/api/v1/trends/statuses", "/api/v1/trends/links",
                 "/api/v1/announcements"):
        status, body = await api.get(path)
        assert status == 200 and body == [], path
        assert (await rig.api().get(path))[0] == 401, path
    status, body = await api.post("/api/v1/announcements/1/dismiss")
    assert status == 404 and "error" in body
