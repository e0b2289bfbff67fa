"""Periodic housekeeping that belongs to the whole instance, run by `serve` and `worker` alike.

Each job is safe to run in several processes at once (PostgreSQL scale-out): closing a poll, sending
its pending counts, deleting an orphan upload, an old counter or a finished queue row happens once
because the rows themselves say what is left to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voisinage.models.base import utcnow
from voisinage.models.db import refresh_statistics, write_session
from voisinage.models.delivery import Delivery, prune_sent
from voisinage.models.inbox_item import InboxItem
from voisinage.models.meta import IdempotentResult, prune_counters
from voisinage.models.poll import UPDATE_EVERY, Poll
from voisinage.models.queue import FINISHED_KEPT, prune_finished

from . import federate, media
from .posting import close_expired_polls

log = logging.getLogger("voisinage.maintenance")

INTERVAL_SECONDS = 60.0
ANALYZE_EVERY_SECONDS = 24 * 3600.0  # the planner's statistics (models.db.refresh_statistics)
IDEMPOTENCY_HOURS = 1
COUNTER_DAYS = 2
PRUNE_ROWS = 2000  # finished queue rows deleted per table and round: a short write, whatever the backlog


async def run_once(sessionmaker: async_sessionmaker[AsyncSession], media_root: Path,
                   now: dt.datetime | None = None) -> dict[str, int]:
    """One round of every job; returns how many rows each touched."""
    now = now or utcnow()
    done: dict[str, int] = {}
    async with write_session(sessionmaker) as session:
        done["polls"] = await close_expired_polls(session, now)
    async with write_session(sessionmaker) as session:
        done["poll_updates"] = await send_poll_updates(session, now)
    async with write_session(sessionmaker) as session:
        done["orphan_media"] = await media.cleanup_orphans(session, media_root, now=now)
    async with write_session(sessionmaker) as session:
        result = await session.execute(delete(IdempotentResult).where(
            IdempotentResult.created_at < now - dt.timedelta(hours=IDEMPOTENCY_HOURS)))
        done["idempotency_keys"] = result.rowcount or 0
        await prune_counters(session, now.timestamp() - COUNTER_DAYS * 86400)
    async with write_session(sessionmaker) as session:
        # Sent and received activities, once finished, would otherwise stay forever (50 delivery rows
        # per village post to 50 partners).
        before = now - FINISHED_KEPT
        done["finished_deliveries"] = await prune_finished(session, Delivery, before, PRUNE_ROWS)
        done["finished_inbox_items"] = await prune_finished(session, InboxItem, before, PRUNE_ROWS)
        done["sent_activities"] = await prune_sent(session, before, PRUNE_ROWS)
    return done


async def send_poll_updates(session: AsyncSession, now: dt.datetime) -> int:
    """Update{Question} for our open polls that counted votes since the last one, sent over
    `UPDATE_EVERY` ago (`Poll.update_due`); returns how many polls were sent."""
    polls = list(await session.scalars(
        select(Poll).where(Poll.update_pending.is_(True), Poll.closed_at.is_(None),
                           Poll.federated_at <= now - UPDATE_EVERY)
        .order_by(Poll.id).limit(500).with_for_update(skip_locked=True)))
    for poll in polls:
        poll.federated(now)
        await federate.poll_changed(session, poll)
    await session.flush()
    return len(polls)


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], media_root: Path,
                      stop: asyncio.Event) -> None:
    """Every minute until `stop` is set; a failing round is logged and the next one tried."""
    analyzed = -ANALYZE_EVERY_SECONDS  # the first round refreshes the planner's statistics
    while not stop.is_set():
        started = time.monotonic()
        try:
            await run_once(sessionmaker, media_root)
            if started - analyzed >= ANALYZE_EVERY_SECONDS:
                await refresh_statistics(sessionmaker)
                analyzed = started
        except Exception:
            log.exception("maintenance round failed")
        try:
            await asyncio.wait_for(stop.wait(), max(1.0, INTERVAL_SECONDS - (time.monotonic() - started)))
        except TimeoutError:
            pass
