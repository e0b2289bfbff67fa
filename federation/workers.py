"""Background workers: the inbox queue and the delivery queue, as one cleanup context of the app.

`workers_ctx(app)` runs both loops while the app runs (short sleeps when idle; `wake(app)` ends a
sleep early), and a heartbeat that renews the leases of the rows they hold (models/queue.py), so a
process that dies stops holding them within one lease. On shutdown the loops stop claiming, get a
moment to finish what is in flight, and give back the rows they still hold. `drain(ctx)` processes
both queues until nothing is due: tests call it instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from sqlalchemy import update

from voisinage.models.db import write_session
from voisinage.models.delivery import Delivery
from voisinage.models.inbox_item import InboxItem
from voisinage.models.queue import HEARTBEAT_SECONDS, LEASE, renew_claims

from . import delivery, inbox_worker
from .context import FEDERATION, FederationContext
from .local_keys import get_instance_actor

log = logging.getLogger("voisinage.federation.workers")

IDLE_SLEEP = 0.5
STOP_GRACE = 2.0  # seconds in-flight work may take to finish on shutdown before it is cancelled
MAX_DRAIN_ROUNDS = 1000
# Delivery batches in flight at once: a batch waits for its slowest peer before its outcomes are
# recorded, so one loop alone leaves the sending side idle behind a slow inbox.
DELIVERY_LOOPS = 4
_INSTANCE_READY = "\x00instance-actor-ready"


class Wakeup:
    """Ends the idle sleep of one queue's loops. One per queue: a received activity wakes the inbox
    loop only, a new delivery the delivery loops only.

    Each loop sleeps on its own event: with one event shared and cleared by whichever loop woke first,
    a loop still busy when the wake-up came could sleep through it with work due. A wake-up starts one
    sleeping loop (each claim is four round trips on PostgreSQL, and a post's deliveries are one
    batch): the loops at work claim again as soon as their batch is done, and a loop whose batch came
    back full wakes one more (`more`), so a backlog spreads over the loops. When no loop sleeps, every
    loop's event is set: a loop about to sleep looks once more first."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []
        self._sleeping: list[asyncio.Event] = []  # the longest asleep first

    def event(self) -> asyncio.Event:
        """A new loop's own event."""
        event = asyncio.Event()
        self._events.append(event)
        return event

    async def sleep(self, event: asyncio.Event, seconds: float) -> None:
        """Sleep on a loop's `event` until a wake-up starts it or `seconds` have passed."""
        self._sleeping.append(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        finally:
            self._sleeping.remove(event)
            event.clear()

    def set(self) -> None:
        """New work: start the loop asleep longest (one already started will see it too)."""
        if not self._sleeping:
            self.set_all()
        else:
            self.more()

    def more(self) -> None:
        """Start one more sleeping loop, if one sleeps and none of those is starting already."""
        for event in self._sleeping:
            if event.is_set():
                return
        if self._sleeping:
            self._sleeping[0].set()

    def set_all(self) -> None:
        for event in self._events:
            event.set()


WAKE = web.AppKey("federation_wake", Wakeup)  # the inbox loop's, for the inbox handler

Batch = Callable[..., Awaitable[int]]  # (ctx, *, held) -> rows taken: inbox_worker / delivery


async def ensure_instance_actor(ctx: FederationContext) -> None:
    """Create (and commit) our instance actor before any signed fetch needs it.

    A peer verifying our signed GET fetches /actor from us; if the actor were only being created in
    the transaction that makes the GET, that fetch would wait on our own write lock (SQLite)."""
    if ctx.key_cache.get(_INSTANCE_READY):
        return
    async with write_session(ctx.sessionmaker) as session:
        await get_instance_actor(session, ctx)
    ctx.key_cache[_INSTANCE_READY] = True


async def drain(ctx: FederationContext) -> int:
    """Process inbox items and deliveries until neither queue has due work; returns rows handled."""
    await ensure_instance_actor(ctx)
    total = 0
    for _ in range(MAX_DRAIN_ROUNDS):
        done = await inbox_worker.process_due(ctx) + await delivery.deliver_due(ctx)
        if done == 0:
            return total
        total += done
    return total


class Workers:
    """The inbox and delivery loops and the rows they hold, so that stopping can release them."""

    def __init__(self, ctx: FederationContext, inbox_wake: Wakeup) -> None:
        self.ctx = ctx
        self.inbox_wake = inbox_wake
        self.delivery_wake = Wakeup()
        self.stopping = False
        self.held_items: set[int] = set()
        self.held_deliveries: set[int] = set()

    async def loop(self, name: str, batch: Batch, held: set[int], wakeup: Wakeup, full: int) -> None:
        """Run `batch` until stopped; sleep a little when it found nothing, or until woken; wake one
        more loop of the queue when it found `full` rows (a backlog)."""
        event = wakeup.event()
        while not self.stopping:
            try:
                found = await batch(self.ctx, held=held)  # each queue's own batch size
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a database hiccup must not kill the loop
                log.exception("%s worker failed; retrying", name)
                found = 0
            if found >= full:
                wakeup.more()
            elif not found:
                await wakeup.sleep(event, IDLE_SLEEP)

    async def heartbeat(self) -> None:
        """Renew the leases of the rows still held, until stopped; a failed round is tried again."""
        while not self.stopping:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing claims failed; retrying")

    async def renew(self) -> None:
        held = ((InboxItem, set(self.held_items)), (Delivery, set(self.held_deliveries)))
        if not any(ids for _, ids in held):
            return
        now = delivery.now_of(self.ctx)
        async with write_session(self.ctx.sessionmaker) as session:
            for model, ids in held:
                await renew_claims(session, model, ids, lease=LEASE, now=now)

    async def release(self) -> None:
        """Give back every row still claimed (their lease ends now)."""
        await inbox_worker.release(self.ctx, set(self.held_items))
        await delivery.release(self.ctx, set(self.held_deliveries))


def wake(app: web.Application) -> None:
    """Tell the idle inbox loop there is a new received activity (a bonus: it also polls)."""
    wakeup = app.get(WAKE)
    if wakeup is not None:
        wakeup.set()


async def run_workers(ctx: FederationContext, stop: asyncio.Event, inbox_wake: Wakeup | None = None) -> None:
    """Run the inbox loop and the delivery loops until `stop` is set, then release held rows (the
    `voisinage worker` command)."""
    await ensure_instance_actor(ctx)
    workers = Workers(ctx, inbox_wake or Wakeup())
    ctx.wake = workers.delivery_wake  # new deliveries wake their loops at the commit (federation.outbox.publish)
    tasks = [asyncio.create_task(workers.loop("inbox", inbox_worker.process_due, workers.held_items,
                                              workers.inbox_wake, inbox_worker.BATCH)),
             *(asyncio.create_task(workers.loop("delivery", delivery.deliver_due, workers.held_deliveries,
                                                workers.delivery_wake, delivery.BATCH))
               for _ in range(DELIVERY_LOOPS))]
    beat = asyncio.create_task(workers.heartbeat())
    await stop.wait()
    workers.stopping = True
    workers.inbox_wake.set_all()
    workers.delivery_wake.set_all()
    await asyncio.wait(tasks, timeout=STOP_GRACE)  # a delivery cut off mid-POST would be sent again
    for task in (*tasks, beat):
        task.cancel()
    await asyncio.gather(*tasks, beat, return_exceptions=True)
    await workers.release()


async def release_stale_claims(ctx: FederationContext) -> None:
    """On SQLite one process serves the instance, so at its start every claim is a dead process's
    (kill -9): give them back now instead of waiting for their leases to end. Never on PostgreSQL,
    where other live processes may hold claims: there a dead process's claims, no longer renewed by
    its heartbeat, are due again for any process within one lease (models/queue.py)."""
    bind = ctx.sessionmaker.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return
    async with write_session(ctx.sessionmaker) as session:
        for model in (Delivery, InboxItem):
            await session.execute(update(model).where(model.locked_until.is_not(None))
                                  .values(locked_until=None))


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx that runs the inbox and delivery workers while the app runs."""
    await release_stale_claims(app[FEDERATION])
    stop = asyncio.Event()
    app[WAKE] = Wakeup()
    task = asyncio.create_task(run_workers(app[FEDERATION], stop, app[WAKE]))
    yield
    stop.set()
    await task
