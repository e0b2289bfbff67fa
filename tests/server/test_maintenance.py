"""Housekeeping: ended polls are closed, old idempotency keys and counters go, orphan uploads go."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.meta import IdempotentResult, RateCounter
from voisinage.models.notification import Notification
from voisinage.models.poll import Poll
from voisinage.server.services import maintenance


async def test_one_round_closes_polls_and_prunes_old_rows(rig):
    status, post = await rig.api("alder").post("/api/v1/statuses", json={
        "status": "Fête du village : samedi ou dimanche ?",
        "poll": {"options": ["samedi", "dimanche"], "expires_in": 300}})
    assert status == 200, post
    await rig.api("birch").post(f"/api/v1/polls/{post['poll']['id']}/votes", json={"choices": [0]})
    status, _ = await rig.api("alder").post("/api/v1/statuses", json={"status": "une fois"},
                                            headers={"Idempotency-Key": "k1"})
    assert status == 200
    assert await rig.count(IdempotentResult) == 1
    async with write_session(rig.sessionmaker) as session:
        session.add(RateCounter(key="api:ip:old", window_start=1, count=3))

    later = utcnow() + dt.timedelta(hours=2)
    done = await maintenance.run_once(rig.sessionmaker, Path(rig.settings.media.path), now=later)
    assert done["polls"] == 1 and done["idempotency_keys"] == 1
    assert await rig.count(IdempotentResult) == 0
    assert await rig.count(RateCounter, RateCounter.key == "api:ip:old") == 0
    assert await rig.count(Notification, Notification.kind == "poll") == 2  # the author and the voter

    again = await maintenance.run_once(rig.sessionmaker, Path(rig.settings.media.path), now=later)
    assert again["polls"] == 0
    assert await rig.count(Notification, Notification.kind == "poll") == 2
    assert await rig.count(Poll) == 1


async def test_finished_queue_rows_go_after_a_week_and_pending_ones_stay(rig):
    """Deliveries and received activities that finished over FINISHED_KEPT ago are deleted, then the
    outgoing activities nothing will send again; pending rows, recent rows and an activity with a
    delivery left stay."""
    from sqlalchemy import select

    from voisinage.models.actor import Actor
    from voisinage.models.delivery import Delivery, OutgoingActivity
    from voisinage.models.ids import id_at
    from voisinage.models.inbox_item import InboxItem
    from voisinage.models.queue import DONE, FAILED, FINISHED_KEPT, PENDING

    now = utcnow()
    old = now - FINISHED_KEPT - dt.timedelta(hours=1)
    recent = now - dt.timedelta(days=1)

    def at(moment: dt.datetime, serial: int) -> int:
        return id_at(moment.timestamp(), serial)

    async with write_session(rig.sessionmaker) as session:
        signer = await session.scalar(select(Actor.id).where(Actor.username == "alder"))
        for n, moment in enumerate((old, old, recent)):  # gone, kept (a pending delivery), kept (recent)
            session.add(OutgoingActivity(id=at(moment, n), activity_uri=f"https://here/a/{n}", signer_id=signer,
                                         body=b"{}", created_at=moment))
        await session.flush()
        deliveries = [(at(old, 10), at(old, 0), DONE), (at(old, 11), at(old, 0), FAILED),
                      (at(old, 12), at(old, 1), DONE), (at(old, 13), at(old, 1), PENDING),
                      (at(recent, 14), at(recent, 2), DONE)]
        for delivery_id, outgoing_id, state in deliveries:
            session.add(Delivery(id=delivery_id, outgoing_id=outgoing_id, inbox_uri=f"https://there/{delivery_id}",
                                 host="there", state=state, next_attempt_at=old, created_at=old))
        items = [(at(old, 20), DONE), (at(old, 21), FAILED), (at(old, 22), PENDING), (at(recent, 23), DONE)]
        for item_id, state in items:
            session.add(InboxItem(id=item_id, activity_uri=f"https://there/act/{item_id}", signer_uri="https://there/u",
                                  body={}, state=state, next_attempt_at=old, created_at=old))

    done = await maintenance.run_once(rig.sessionmaker, Path(rig.settings.media.path), now=now)
    assert (done["finished_deliveries"], done["finished_inbox_items"], done["sent_activities"]) == (3, 2, 1)
    assert sorted(d.id for d in await rig.rows(Delivery)) == [at(old, 13), at(recent, 14)]
    assert sorted(i.id for i in await rig.rows(InboxItem)) == [at(old, 22), at(recent, 23)]
    assert sorted(o.id for o in await rig.rows(OutgoingActivity)) == [at(old, 1), at(recent, 2)]

    again = await maintenance.run_once(rig.sessionmaker, Path(rig.settings.media.path), now=now)
    assert (again["finished_deliveries"], again["finished_inbox_items"], again["sent_activities"]) == (0, 0, 0)
    assert await rig.count(Delivery) == 2 and await rig.count(InboxItem) == 2 and await rig.count(OutgoingActivity) == 2
