"""Waking the worker loops: a received activity wakes the inbox loop and nothing else, new deliveries
one delivery loop (one more for each full batch); no loop can swallow another's wake-up."""

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


async def test_a_wake_up_starts_one_sleeping_loop_and_a_full_batch_one_more():
    wakeup = workers.Wakeup()
    events = [wakeup.event() for _ in range(3)]
    sleeping = [asyncio.create_task(wakeup.sleep(event, 60)) for event in events]
    await asyncio.sleep(0)  # all three asleep
    wakeup.set()
    wakeup.set()  # a second post before the first woken loop ran: that loop will see both
    await asyncio.sleep(0.01)
    assert [task.done() for task in sleeping] == [True, False, False]  # the longest asleep
    wakeup.more()  # its batch came back full
    await asyncio.sleep(0.01)
    assert [task.done() for task in sleeping] == [True, True, False]
    wakeup.set_all()  # stopping
    await asyncio.wait_for(sleeping[2], 1)


async def test_a_new_delivery_starts_one_delivery_loop(rig, monkeypatch):
    """A post's deliveries are one batch: one loop claims them, and claims once more (nothing left),
    where every loop used to claim (on PostgreSQL, four round trips each)."""
    monkeypatch.setattr(workers, "IDLE_SLEEP", 60.0)
    claims: list[int] = []

    async def counted(*args: Any, **kwargs: Any) -> int:
        found = await real(*args, **kwargs)
        claims.append(found)
        return found

    real = delivery.deliver_due
    monkeypatch.setattr(delivery, "deliver_due", counted)
    ctx = rig.app[FEDERATION]
    stop = asyncio.Event()
    running = asyncio.create_task(workers.run_workers(ctx, stop))
    try:
        for _ in range(100):
            if len(claims) == workers.DELIVERY_LOOPS:
                break
            await asyncio.sleep(0.01)
        assert claims == [0] * workers.DELIVERY_LOOPS
        await _a_delivery(rig)
        ctx.wake.set()
        for _ in range(200):
            if len(claims) == workers.DELIVERY_LOOPS + 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert claims[workers.DELIVERY_LOOPS:] == [1, 0]
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def _a_delivery(rig: Any) -> None:
    from voisinage.models.delivery import Delivery, OutgoingActivity

    now = utcnow()
    async with db.write_session(rig.sessionmaker) as session:
        outgoing_id = new_id()
        session.add(OutgoingActivity(id=outgoing_id, activity_uri="https://a.test/activities/1",
                                     signer_id=rig["alder"].actor_id, body=b"{}", created_at=now))
        await session.flush()
        session.add(Delivery(id=new_id(), outgoing_id=outgoing_id, inbox_uri="https://b.test/inbox", host="b.test",
                             state=PENDING, attempts=0, next_attempt_at=now, created_at=now))


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
