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
