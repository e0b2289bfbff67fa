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

from sqlalchemy import bindparam, select, update

from voisinage.models.actor import Actor
from voisinage.models.db import dialect_insert, fast, write_session
from voisinage.models.delivery import Delivery, OutgoingActivity
from voisinage.models.instance import Instance
from voisinage.models.queue import DONE, FAILED, LEASE, claim_due

from . import retry
from .context import FederationContext
from .local_keys import signer_for
from .transport import DeliveryResult, FetchError

log = logging.getLogger("voisinage.federation.delivery")

BATCH = 50
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
    signer: Any  # a row with the Actor columns `local_keys.signer_for` reads, or None when gone


async def claim_deliveries(ctx: FederationContext, limit: int = BATCH,
                           held: set[int] | None = None) -> tuple[list[_Job], set[str]]:
    """Claim due deliveries and load what sending them needs (body and signer), in one transaction;
    returns the jobs and the hosts among theirs that are marked unavailable."""
    async with write_session(ctx.sessionmaker) as session:
        rows = await claim_due(session, Delivery, limit=limit, lease=LEASE, now=now_of(ctx),
                               columns=("inbox_uri", "host", "attempts", "outgoing_id"))
        if not rows:
            return [], set()
        # one query for the batch's activities (a village post's fifty share one), one for their signers
        outgoing = {found.id: found for found in (await session.execute(
            _OUTGOING, {"ids": sorted({row.outgoing_id for row in rows})})).all()}
        signers = {found.id: found for found in (await session.execute(
            _SIGNERS, {"ids": sorted({found.signer_id for found in outgoing.values()})})).all()}
        unavailable = set(await session.scalars(_UNAVAILABLE, {"hosts": sorted({row.host for row in rows})}))
        jobs = []
        for row in rows:
            activity = outgoing.get(row.outgoing_id)
            jobs.append(_Job(row.id, row.inbox_uri, row.host, row.attempts, activity.body if activity else b"",
                             signers.get(activity.signer_id) if activity else None))
    if held is not None:
        held.update(job.delivery_id for job in jobs)
    return jobs, unavailable


_OUTGOING = fast(select(OutgoingActivity.id, OutgoingActivity.signer_id, OutgoingActivity.body)
                 .where(OutgoingActivity.id.in_(bindparam("ids", expanding=True))))
# What signing needs of a signer (`local_keys.signer_for`), without loading Actor rows.
_SIGNERS = fast(select(Actor.id, Actor.uri, Actor.key_id, Actor.private_key_pem)
                .where(Actor.id.in_(bindparam("ids", expanding=True))))
_UNAVAILABLE = fast(select(Instance.host).where(Instance.host.in_(bindparam("hosts", expanding=True)),
                                                Instance.unavailable_since.is_not(None)))


async def send(ctx: FederationContext, job: _Job) -> DeliveryResult:
    """POST one delivery; every failure comes back as a DeliveryResult."""
    if job.signer is None or not job.body:
        return DeliveryResult(400, None, "activity or signer is gone")
    try:
        sign = signer_for(job.signer)
        return await ctx.transport.post(job.inbox, job.body, HEADERS, sign=sign)
    except (FetchError, ValueError) as exc:
        return DeliveryResult(400, None, str(exc)[:300])


async def record_all(ctx: FederationContext, outcomes: list[tuple[_Job, DeliveryResult]]) -> list[str]:
    """Store the outcomes of a batch of attempts in one transaction; "ok", "retry" or "permanent" each.

    Successes, nearly all of a batch, are one executemany UPDATE and their instances one SELECT (the
    ORM's loads and flushes took half the delivery loop's time); failures go through `_apply_failure`."""
    now = now_of(ctx)
    found: dict[int, str] = {}
    async with write_session(ctx.sessionmaker) as session:
        ok = [job for job, result in outcomes if retry.classify(result.status) == "ok"]
        if ok:
            await session.execute(_DONE, [{"b_id": job.delivery_id, "b_attempts": job.attempts + 1}
                                          for job in ok])
            await _healthy(session, {job.host for job in ok})
            found.update((job.delivery_id, "ok") for job in ok)
        failed = [(job, result) for job, result in outcomes if job.delivery_id not in found]
        if failed:
            rows = {d.id: d for d in await session.scalars(
                select(Delivery).where(Delivery.id.in_([job.delivery_id for job, _ in failed])))}
            instances = await _instances(session, {job.host for job, _ in failed})
            for job, result in failed:
                found[job.delivery_id] = _apply_failure(job, result, rows.get(job.delivery_id), instances[job.host],
                                                        now)
    return [found[job.delivery_id] for job, _ in outcomes]


_DONE = fast(update(Delivery.__table__).where(Delivery.__table__.c.id == bindparam("b_id"))
             .values(state=DONE, attempts=bindparam("b_attempts"), locked_until=None, last_error=None))


_HEALTH = fast(select(Instance.host, Instance.failure_days, Instance.unavailable_since)
               .where(Instance.host.in_(bindparam("hosts", expanding=True))))


async def _healthy(session: Any, hosts: set[str]) -> None:
    """Hosts that answered are healthy again, without loading Instance rows: their failure record is
    cleared where there is one (an UPDATE only then), and hosts we have no row for get one."""
    known = (await session.execute(_HEALTH, {"hosts": sorted(hosts)})).all()
    recovered = [host for host, days, since in known if days or since is not None]
    if recovered:
        await session.execute(update(Instance).where(Instance.host.in_(recovered))
                              .values(failure_days=[], unavailable_since=None))
    missing = hosts - {host for host, _, _ in known}
    if missing:
        await session.execute(dialect_insert(session)(Instance).values(
            [{"host": host, "partner": False, "blocked": False, "failure_days": []} for host in sorted(missing)])
            .on_conflict_do_nothing(index_elements=["host"]))


def _apply_failure(job: _Job, result: DeliveryResult, delivery: Delivery | None, instance: Instance,
                   now: dt.datetime) -> str:
    """Record a failed attempt: "permanent", or "retry" after a backoff (with the instance's failure day)."""
    outcome = retry.classify(result.status)
    attempts = job.attempts + 1
    if outcome == "retry" and attempts >= retry.MAX_ATTEMPTS:
        outcome = "permanent"
    if delivery is None:
        return outcome
    delivery.attempts = attempts
    delivery.locked_until = None
    delivery.last_error = result.error
    if outcome == "permanent":
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


async def _instances(session: Any, hosts: set[str]) -> dict[str, Instance]:
    """The Instance rows of the hosts, made for those that have none: one query for a batch (a get
    per delivery flushed the previous outcome each time)."""
    found = {i.host: i for i in await session.scalars(select(Instance).where(Instance.host.in_(sorted(hosts))))}
    for host in hosts - found.keys():
        found[host] = Instance(host=host, partner=False, blocked=False, failure_days=[])
        session.add(found[host])
    return found


async def drop(ctx: FederationContext, jobs: list[_Job]) -> None:
    """Fail deliveries without sending them: their instance is marked unavailable."""
    by_host: dict[str, list[int]] = {}
    for job in jobs:
        by_host.setdefault(job.host, []).append(job.delivery_id)
    async with write_session(ctx.sessionmaker) as session:
        for host, ids in by_host.items():  # one statement per host, not per delivery
            await session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
                state=FAILED, locked_until=None, last_error=f"{host} is unavailable"))


async def deliver_due(ctx: FederationContext, limit: int = BATCH, held: set[int] | None = None) -> int:
    """Claim one batch of due deliveries, send them concurrently, and record every outcome in one
    transaction (a village post to fifty partners is fifty POSTs, not fifty write transactions).
    Returns how many were tried. On cancellation (shutdown) the rows stay held for Workers.release."""
    jobs, unavailable = await claim_deliveries(ctx, limit, held)
    if not jobs:
        return 0
    cancelled = False
    try:
        dropped = [job for job in jobs if job.host in unavailable]
        if dropped:
            await drop(ctx, dropped)
        sending = [job for job in jobs if job.host not in unavailable]
        results = await asyncio.gather(*(send(ctx, job) for job in sending))
        await record_all(ctx, list(zip(sending, results, strict=True)))
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        # A failed batch is let go (its lease ends and it is claimed again), not renewed for ever.
        if held is not None and not cancelled:
            held.difference_update(job.delivery_id for job in jobs)
    return len(jobs)


async def release(ctx: FederationContext, delivery_ids: set[int]) -> None:
    """Give back claimed rows (shutdown): they are due again at once for the next worker."""
    if not delivery_ids:
        return
    async with write_session(ctx.sessionmaker) as session:
        await session.execute(update(Delivery).where(Delivery.id.in_(list(delivery_ids)))
                              .values(locked_until=None))
