"""`notify`: one statement that adds a notification unless the same one is there (on both databases)."""

from sqlalchemy import func, select

from voisinage.models import db
from voisinage.models.notification import Notification, notify


async def _count(sm, **where) -> int:
    async with db.read_session(sm) as session:
        return await session.scalar(select(func.count()).select_from(Notification).filter_by(**where))


async def test_the_same_notification_is_added_once(rig):
    sm = rig.sessionmaker
    alder, birch = rig["alder"].actor_id, rig["birch"].actor_id
    status, body = await rig.api("alder").post("/api/v1/statuses", json={"status": "a note for birch"})
    assert status == 200, body
    post_id = body["id"]
    async with db.write_session(sm) as session:
        first = await notify(session, birch, "favourite", alder, int(post_id))
        again = await notify(session, birch, "favourite", alder, int(post_id))
        other_kind = await notify(session, birch, "reblog", alder, int(post_id))
        follow = await notify(session, birch, "follow", alder)
        follow_again = await notify(session, birch, "follow", alder)
        own = await notify(session, alder, "favourite", alder, int(post_id))
    assert first is not None and first.recipient_id == birch and first.post_id == int(post_id)
    assert again is None and follow_again is None and own is None
    assert other_kind is not None and follow is not None and follow.post_id is None
    assert await _count(sm, recipient_id=birch, kind="favourite") == 1
    assert await _count(sm, recipient_id=birch, kind="reblog") == 1
    assert await _count(sm, recipient_id=birch, kind="follow") == 1
    assert await _count(sm, recipient_id=alder) == 0
    async with db.read_session(sm) as session:
        stored = await session.get(Notification, first.id)
    assert (stored.kind, stored.from_actor_id, stored.post_id, stored.created_at) == \
        ("favourite", alder, int(post_id), first.created_at)
