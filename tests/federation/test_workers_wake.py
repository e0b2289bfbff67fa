"""Waking the worker loops: a received activity wakes the inbox loop and nothing else; no loop can
swallow another's wake-up."""

import asyncio
from typing import Any

from voisinage.federation import delivery, inbox_worker, workers
from voisinage.federation.context import FEDERATION
from voisinage.models import db
from voisinage.models.base import utcnow
from voisinage.models.ids import new_id
from voisinage.models.inbox_item import InboxItem
from voisinage.models.queue import PENDING


async def test_each_loop_keeps_its_own_wake_up():
    wakeup = workers.Wakeup()
    first, second = wakeup.event(), wakeup.event()
    wakeup.set()
    await asyncio.wait_for(first.wait(), 1)
    first.clear()  # the loop that woke first goes back to sleep later...
    assert second.is_set()  # ...and the other one, busy when the wake-up came, still sees it


async def test_a_received_activity_wakes_the_inbox_loop_only(rig, monkeypatch):
    monkeypatch.setattr(workers, "IDLE_SLEEP", 60.0)  # no polling: only a wake-up can start a batch
    calls = {"inbox": 0, "delivery": 0}

    def counting(name: str, batch: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> int:
            calls[name] += 1
            return await batch(*args, **kwargs)
        return counted

    monkeypatch.setattr(inbox_worker, "process_due", counting("inbox", inbox_worker.process_due))
    monkeypatch.setattr(delivery, "deliver_due", counting("delivery", delivery.deliver_due))
    ctx = rig.app[FEDERATION]
    stop, inbox_wake = asyncio.Event(), workers.Wakeup()
    running = asyncio.create_task(workers.run_workers(ctx, stop, inbox_wake))
    try:
        for _ in range(100):  # every loop has looked once and gone to sleep
            if calls == {"inbox": 1, "delivery": workers.DELIVERY_LOOPS}:
                break
            await asyncio.sleep(0.01)
        assert calls == {"inbox": 1, "delivery": workers.DELIVERY_LOOPS}

        now, uri = utcnow(), "https://partner.test/users/nobody"
        async with db.write_session(rig.sessionmaker) as session:
            session.add(InboxItem(id=new_id(), activity_uri=f"{uri}/activities/1", signer_uri=uri,
                                  body={"id": f"{uri}/activities/1", "type": "Note"}, state=PENDING, attempts=0,
                                  next_attempt_at=now, created_at=now))
        inbox_wake.set()
        for _ in range(200):
            if await rig.count(InboxItem, InboxItem.state == PENDING) == 0:
                break
            await asyncio.sleep(0.01)
        assert await rig.count(InboxItem, InboxItem.state == PENDING) == 0  # handled (failed: unknown signer)
        assert calls["delivery"] == workers.DELIVERY_LOOPS  # no delivery loop woke for it
        assert calls["inbox"] >= 2
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
