"""Claiming durable work: two concurrent claimers never take the same row; leases expire unless renewed."""

import asyncio
import datetime as dt
import os

import pytest
from sqlalchemy import update

from voisinage.models import db
from voisinage.models.base import utcnow
from voisinage.models.delivery import Delivery, OutgoingActivity
from voisinage.models.instance import normalize_host
from voisinage.models.queue import DONE, HEARTBEAT_SECONDS, LEASE, claim_due, renew_claims
from voisinage.models.resident import Resident  # noqa: F401


async def _fill(sm, actor_id: int, n: int) -> None:
    async with db.write_session(sm) as session:
        out = OutgoingActivity(activity_uri="https://a.test/x", signer_id=actor_id, body=b"{}")
        session.add(out)
        await session.flush()
        for i in range(n):
            session.add(Delivery(outgoing_id=out.id, inbox_uri=f"https://r{i}.test/inbox", host=f"r{i}.test"))


async def test_concurrent_claims_take_each_row_once(rig):
    sm = rig.sessionmaker
    await _fill(sm, rig["alder"].actor_id, 30)

    async def claimer() -> list[int]:
        taken = []
        while True:
            async with db.write_session(sm) as session:
                rows = await claim_due(session, Delivery, limit=4, lease=dt.timedelta(minutes=5))
                taken.extend(r.id for r in rows)
            if not rows:
                return taken
            await asyncio.sleep(0)

    results = await asyncio.gather(claimer(), claimer(), claimer())
    all_ids = [i for r in results for i in r]
    assert len(all_ids) == 30 and len(set(all_ids)) == 30


async def test_a_lease_expires_so_a_dead_workers_rows_come_back(rig):
    sm = rig.sessionmaker
    await _fill(sm, rig["alder"].actor_id, 2)
    async with db.write_session(sm) as session:
        first = await claim_due(session, Delivery, limit=10, lease=dt.timedelta(minutes=5))
    assert len(first) == 2
    async with db.write_session(sm) as session:
        assert await claim_due(session, Delivery, limit=10, lease=dt.timedelta(minutes=5)) == []
    later = utcnow() + dt.timedelta(minutes=6)
    async with db.write_session(sm) as session:
        again = await claim_due(session, Delivery, limit=10, lease=dt.timedelta(minutes=5), now=later)
    assert {d.id for d in again} == {d.id for d in first}


@pytest.mark.parametrize("raw,expected", [
    ("Example.COM", "example.com"), ("localhost:18081", "localhost:18081"), ("a.test.", "a.test"),
    ("bücher.example", "xn--bcher-kva.example"), ("B.test:443", "b.test:443"),
])
def test_hosts_are_normalized_exactly(raw, expected):
    assert normalize_host(raw) == expected


@pytest.mark.parametrize("raw", ["", "a/b", "x@y", "a.test:99999", "a.test:port", "a b"])
def test_bad_hosts_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_host(raw)


async def test_a_renewed_claim_outlives_its_lease_and_finished_rows_are_not_renewed(rig):
    sm = rig.sessionmaker
    await _fill(sm, rig["alder"].actor_id, 3)
    lease = dt.timedelta(seconds=60)
    start = utcnow()
    async with db.write_session(sm) as session:
        held = await claim_due(session, Delivery, limit=10, lease=lease, now=start)
    finished, given_back, kept = held
    async with db.write_session(sm) as session:
        await session.execute(update(Delivery).where(Delivery.id == finished.id).values(state=DONE, locked_until=None))
        await session.execute(update(Delivery).where(Delivery.id == given_back.id).values(locked_until=None))
    beat = start + dt.timedelta(seconds=50)  # the heartbeat, before the lease ends
    async with db.write_session(sm) as session:
        renewed = await renew_claims(session, Delivery, [d.id for d in held], lease=lease, now=beat)
    assert renewed == 1
    rows = {d.id: d for d in await rig.rows(Delivery)}
    assert rows[kept.id].locked_until == beat + lease
    assert rows[finished.id].locked_until is None and rows[given_back.id].locked_until is None
    async with db.write_session(sm) as session:  # past the first lease: the renewed claim still holds
        again = await claim_due(session, Delivery, limit=10, lease=lease, now=start + dt.timedelta(seconds=70))
    assert [d.id for d in again] == [given_back.id]
    async with db.write_session(sm) as session:  # no more heartbeat (the holder died): back after its lease
        late = await claim_due(session, Delivery, limit=10, lease=lease, now=beat + lease + dt.timedelta(seconds=1))
    assert [d.id for d in late] == [kept.id]


def test_the_lease_is_short_and_only_a_test_environment_variable_changes_it():
    assert LEASE == dt.timedelta(seconds=60) or "VOISINAGE_TEST_LEASE_SECONDS" in os.environ
    assert HEARTBEAT_SECONDS < LEASE.total_seconds() / 2


async def test_a_claimed_batch_comes_in_arrival_order(rig):
    """RETURNING does not follow ORDER BY: rows written in another order than they are due still come
    back due-first, so a Create and its Delete claimed together are handled in order."""
    sm = rig.sessionmaker
    base = utcnow() - dt.timedelta(minutes=1)
    async with db.write_session(sm) as session:
        out = OutgoingActivity(activity_uri="https://a.test/x", signer_id=rig["alder"].actor_id, body=b"{}")
        session.add(out)
        await session.flush()
        for i in reversed(range(12)):  # the last due is written first
            session.add(Delivery(outgoing_id=out.id, inbox_uri=f"https://r{i}.test/inbox", host=f"r{i}.test",
                                 next_attempt_at=base + dt.timedelta(seconds=i)))
            await session.flush()
    async with db.write_session(sm) as session:
        rows = await claim_due(session, Delivery, limit=12, lease=dt.timedelta(minutes=5), columns=("host",))
    assert [r.host for r in rows] == [f"r{i}.test" for i in range(12)]


async def test_on_postgresql_a_claim_is_planned_for_its_own_values_and_nothing_else_is(rig):
    """A prepared claim whose plan went generic while the queue was empty (an idle server polls) would
    keep walking every row once the queue fills: the claim's transaction plans each statement for its
    values. The setting ends with the transaction: the pooled connection's other users keep the default."""
    from sqlalchemy import text

    sm = rig.sessionmaker
    if sm.kw["bind"].dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    await _fill(sm, rig["alder"].actor_id, 3)
    async with db.write_session(sm) as session:
        rows = await claim_due(session, Delivery, limit=10, lease=dt.timedelta(minutes=5))
        assert len(rows) == 3
        assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    async with sm() as session:
        assert await session.scalar(text("SELECT pg_backend_pid()")) == pid  # the same pooled connection
        assert await session.scalar(text("SHOW plan_cache_mode")) == "auto"
