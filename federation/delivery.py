"""The delivery worker: send due Delivery rows, signed by their activity's signer, and reschedule.

Outcomes (federation/retry.py): 2xx -> done and the instance is healthy again; 4xx other than
401/408/429 -> failed for good; anything else -> retried after a jittered backoff, or after the peer's
Retry-After when it is longer, up to MAX_ATTEMPTS. A retried failure records the day on the Instance;
7 distinct failure days mark it unavailable, and its deliveries are then dropped until it talks to us
again (an inbox request from it resets it). [Mastodon DeliveryFailureTracker]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.delivery import Delivery, OutgoingActivity
from voisinage.models.instance import Instance
from voisinage.models.queue import DONE, FAILED, LEASE, claim_due

from . import retry
from .context import FederationContext
from .local_keys import signer_for
from .transport import DeliveryResult, FetchError

log = logging.getLogger("voisinage.federation.delivery")

BATCH = 20
HEADERS = {"Content-Type": "application/activity+json"}


def now_of(ctx: FederationContext) -> dt.datetime:
    """The context's clock as an aware UTC datetime (tests move ctx.clock)."""
    return dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)


@dataclass
class _Job:
    delivery_id: int
    inbox: str
    host: str
    attempts: int
    body: bytes
    signer: Actor | None


async def claim_deliveries(ctx: FederationContext, limit: int = BATCH,
                           held: set[int] | None = None) -> list[_Job]:
    """Claim due deliveries and load what sending them needs (body and signer)."""
    async with write_session(ctx.sessionmaker) as session:
        rows = await claim_due(session, Delivery, limit=limit, lease=LEASE, now=now_of(ctx))
        jobs = []
        for row in rows:
            outgoing = await session.get(OutgoingActivity, row.outgoing_id)
            signer = await session.get(Actor, outgoing.signer_id) if outgoing else None
            jobs.append(_Job(row.id, row.inbox_uri, row.host, row.attempts,
                             outgoing.body if outgoing else b"", signer))
    if held is not None:
        held.update(job.delivery_id for job in jobs)
    return jobs


async def send(ctx: FederationContext, job: _Job) -> DeliveryResult:
    """POST one delivery; every failure comes back as a DeliveryResult."""
    if job.signer is None or not job.body:
        return DeliveryResult(400, None, "activity or signer is gone")
    try:
        sign = signer_for(job.signer)
        return await ctx.transport.post(job.inbox, job.body, HEADERS, sign=sign)
    except (FetchError, ValueError) as exc:
        return DeliveryResult(400, None, str(exc)[:300])


async def _unavailable(ctx: FederationContext, host: str) -> bool:
    async with ctx.sessionmaker() as session:
        since = await session.scalar(select(Instance.unavailable_since).where(Instance.host == host))
    return since is not None


async def record(ctx: FederationContext, job: _Job, result: DeliveryResult) -> str:
    """Store the outcome of one attempt; returns "ok", "retry" or "permanent"."""
    now = now_of(ctx)
    outcome = retry.classify(result.status)
    attempts = job.attempts + 1
    if outcome == "retry" and attempts >= retry.MAX_ATTEMPTS:
        outcome = "permanent"
    async with write_session(ctx.sessionmaker) as session:
        delivery = await session.get(Delivery, job.delivery_id)
        if delivery is None:
            return outcome
        delivery.attempts = attempts
        delivery.locked_until = None
        delivery.last_error = result.error
        instance = await _instance(session, job.host)
        if outcome == "ok":
            delivery.state = DONE
            instance.record_success()
        elif outcome == "permanent":
            delivery.state = FAILED
            log.info("delivery to %s failed for good: %s", job.inbox, result.error)
        else:
            wait = max(retry.backoff(attempts), result.retry_after_seconds or 0.0)
            log.info("delivery to %s failed (%s); next try in %.0f s", job.inbox, result.error, wait)
            delivery.next_attempt_at = now + dt.timedelta(seconds=wait)
            _record_failure_day(instance, now)
    return outcome


def _record_failure_day(instance: Instance, now: dt.datetime) -> None:
    instance.record_failure(now.date())
    if instance.should_be_unavailable and instance.unavailable_since is None:
        instance.unavailable_since = now
        log.warning("instance %s failed on %d days: marked unavailable", instance.host,
                    len(instance.failure_days))


async def _instance(session: Any, host: str) -> Instance:
    instance = await session.get(Instance, host)
    if instance is None:
        instance = Instance(host=host, partner=False, blocked=False, failure_days=[])
        session.add(instance)
    return instance


async def drop(ctx: FederationContext, job: _Job, reason: str) -> None:
    """Fail a delivery without sending it."""
    async with write_session(ctx.sessionmaker) as session:
        await session.execute(update(Delivery).where(Delivery.id == job.delivery_id).values(
            state=FAILED, locked_until=None, last_error=reason))


async def process(ctx: FederationContext, job: _Job, held: set[int] | None = None) -> str:
    """Send one claimed delivery and record the outcome."""
    cancelled = False
    try:
        if await _unavailable(ctx, job.host):
            await drop(ctx, job, f"{job.host} is unavailable")
            return "permanent"
        result = await send(ctx, job)
        return await record(ctx, job, result)
    except asyncio.CancelledError:
        cancelled = True  # shutdown: the row stays held so that Workers.release gives it back
        raise
    finally:
        if held is not None and not cancelled:
            held.discard(job.delivery_id)


async def deliver_due(ctx: FederationContext, limit: int = BATCH, held: set[int] | None = None) -> int:
    """Claim and send one batch of due deliveries concurrently; returns how many were tried."""
    jobs = await claim_deliveries(ctx, limit, held)
    if jobs:
        await asyncio.gather(*(process(ctx, job, held) for job in jobs))
    return len(jobs)


async def release(ctx: FederationContext, delivery_ids: set[int]) -> None:
    """Give back claimed rows (shutdown): they are due again at once for the next worker."""
    if not delivery_ids:
        return
    async with write_session(ctx.sessionmaker) as session:
        await session.execute(update(Delivery).where(Delivery.id.in_(list(delivery_ids)))
                              .values(locked_until=None))
