"""The delivery worker against real aiohttp servers on loopback: retries, Retry-After, permanent
failures, failure days and recovery. The clock is the federation context's (`ctx.clock`)."""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from voisinage.federation import delivery
from voisinage.federation.context import FEDERATION
from voisinage.federation.outbox import publish
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.delivery import Delivery
from voisinage.models.instance import Instance
from voisinage.models.queue import DONE, FAILED, PENDING

from ..rig.network import wired_to_loopback

# Tomorrow 09:00 UTC: after every row's default `next_attempt_at` (the real now), same day all test long.
T0 = (dt.datetime.fromtimestamp(time.time(), dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)
      + dt.timedelta(days=1)).timestamp()
T0_DAY = dt.datetime.fromtimestamp(T0, dt.UTC).date().isoformat()


class Peer:
    """A loopback inbox whose answer the test chooses; it records what it received."""

    def __init__(self) -> None:
        self.status = 202
        self.headers: dict[str, str] = {}
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status, headers=self.headers)


@pytest.fixture
async def peer(aiohttp_server: Any) -> tuple[Peer, str]:
    p = Peer()
    app = web.Application()
    app.router.add_post("/inbox", p.inbox)
    server = await aiohttp_server(app, host="127.0.0.1")
    return p, f"127.0.0.1:{server.port}"


@pytest.fixture
async def wired(rig: Any) -> Any:
    """The rig's commune with a real loopback-allowed transport and a controllable clock."""
    async with wired_to_loopback(rig, T0) as wired_rig:
        yield wired_rig


async def _enqueue(rig: Any, host: str, inbox: str | None = None, partner: bool = True) -> None:
    ctx = rig.app[FEDERATION]
    async with write_session(rig.sessionmaker) as session:
        if await session.get(Instance, host) is None:
            session.add(Instance(host=host, partner=partner, blocked=False, failure_days=[]))
            await session.flush()
        alder = await session.get(Actor, rig["alder"].actor_id)
        activity = {"id": f"{alder.uri}#test/{len(str(inbox))}-{id(session)}", "type": "Note",
                    "actor": alder.uri}
        await publish(session, ctx, activity, alder, [inbox or f"http://{host}/inbox"])


async def _delivery(rig: Any) -> Delivery:
    rows = await rig.rows(Delivery)
    assert len(rows) == 1
    return rows[0]


async def _instance(rig: Any, host: str) -> Instance:
    return (await rig.rows(Instance, Instance.host == host))[0]


async def test_success_is_signed_and_done(wired: Any, peer: Any) -> None:
    server, host = peer
    await _enqueue(wired, host)
    assert await delivery.deliver_due(wired.app[FEDERATION]) == 1
    row = await _delivery(wired)
    assert (row.state, row.attempts, row.locked_until) == (DONE, 1, None)
    headers, body = server.received[0]
    assert "keyId=" in headers["Signature"] and headers["Digest"].startswith("SHA-256=")
    assert b'"actor"' in body


async def test_not_a_partner_gets_no_delivery(wired: Any, peer: Any) -> None:
    server, host = peer
    await _enqueue(wired, host, partner=False)
    assert await wired.count(Delivery) == 0
    assert await delivery.deliver_due(wired.app[FEDERATION]) == 0
    assert server.received == []


async def test_503_with_retry_after_reschedules_later(wired: Any, peer: Any) -> None:
    server, host = peer
    server.status, server.headers = 503, {"Retry-After": "3600"}
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]
    await delivery.deliver_due(ctx)
    row = await _delivery(wired)
    assert (row.state, row.attempts) == (PENDING, 1)
    wait = (row.next_attempt_at - dt.datetime.fromtimestamp(T0, dt.UTC)).total_seconds()
    assert 3599 <= wait <= 3601, wait  # Retry-After is longer than the 20 s backoff
    wired.clock["now"] = T0 + 1800
    assert await delivery.deliver_due(ctx) == 0  # not due yet
    wired.clock["now"] = T0 + 3601
    server.status, server.headers = 202, {}
    assert await delivery.deliver_due(ctx) == 1
    assert (await _delivery(wired)).state == DONE
    assert len(server.received) == 2


async def test_refused_connection_backs_off(wired: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = f"127.0.0.1:{port}"
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]
    await delivery.deliver_due(ctx)
    row = await _delivery(wired)
    wait = (row.next_attempt_at - dt.datetime.fromtimestamp(T0, dt.UTC)).total_seconds()
    assert row.state == PENDING and 17 <= wait <= 23, wait
    assert row.last_error
    wired.clock["now"] = T0 + 25
    await delivery.deliver_due(ctx)
    row = await _delivery(wired)
    wait = (row.next_attempt_at - dt.datetime.fromtimestamp(T0 + 25, dt.UTC)).total_seconds()
    assert row.attempts == 2 and 35 <= wait <= 45, wait  # doubled
    assert (await _instance(wired, host)).failure_days == [T0_DAY]


async def test_410_is_permanent(wired: Any, peer: Any) -> None:
    server, host = peer
    server.status = 410
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]
    await delivery.deliver_due(ctx)
    row = await _delivery(wired)
    assert (row.state, row.attempts) == (FAILED, 1)
    wired.clock["now"] = T0 + 10 * 86400
    assert await delivery.deliver_due(ctx) == 0
    assert len(server.received) == 1


async def test_seven_failure_days_make_unavailable_and_success_resets(wired: Any, peer: Any) -> None:
    server, host = peer
    server.status = 500
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]
    for day in range(7):
        wired.clock["now"] = T0 + day * 86400
        async with write_session(wired.sessionmaker) as session:  # due again every day
            row = (await session.scalars(select(Delivery))).one()
            row.next_attempt_at = dt.datetime.fromtimestamp(wired.clock["now"], dt.UTC)
        assert await delivery.deliver_due(ctx) == 1
        instance = await _instance(wired, host)
        assert len(instance.failure_days) == day + 1
        assert (instance.unavailable_since is not None) == (day == 6)
    # unavailable: a new activity gets no Delivery row, and the pending one is dropped unsent
    await _enqueue(wired, host)
    assert await wired.count(Delivery) == 1
    wired.clock["now"] = T0 + 8 * 86400
    sent = len(server.received)
    await delivery.deliver_due(ctx)
    assert len(server.received) == sent
    assert (await _delivery(wired)).state == FAILED
    # it answers again (say an inbox request from it cleared the mark): a success resets the days
    async with write_session(wired.sessionmaker) as session:
        instance = await session.get(Instance, host)
        instance.unavailable_since = None
    server.status = 202
    await _enqueue(wired, host)
    await delivery.deliver_due(ctx)
    instance = await _instance(wired, host)
    assert instance.failure_days == [] and instance.unavailable_since is None


async def test_a_batch_of_successes_and_failures_records_each(wired: Any, peer: Any,
                                                               aiohttp_server: Any) -> None:
    """Successes are recorded in bulk, failures one by one, in the same batch: each row gets its own
    outcome, and only the failing host gets a failure day (the healthy one had one, now cleared)."""
    good, good_host = peer
    bad = Peer()
    bad.status = 500
    app = web.Application()
    app.router.add_post("/inbox", bad.inbox)
    bad_host = f"127.0.0.1:{(await aiohttp_server(app, host='127.0.0.1')).port}"
    await _enqueue(wired, good_host)
    await _enqueue(wired, bad_host)
    async with write_session(wired.sessionmaker) as session:
        (await session.get(Instance, good_host)).failure_days = ["2020-01-01"]
    assert await delivery.deliver_due(wired.app[FEDERATION]) == 2
    rows = {row.host: row for row in await wired.rows(Delivery)}
    assert (rows[good_host].state, rows[good_host].attempts, rows[good_host].locked_until) == (DONE, 1, None)
    assert (rows[bad_host].state, rows[bad_host].attempts, rows[bad_host].locked_until) == (PENDING, 1, None)
    assert rows[bad_host].last_error and rows[good_host].last_error is None
    assert (await _instance(wired, good_host)).failure_days == []
    assert (await _instance(wired, bad_host)).failure_days == [T0_DAY]
    assert len(good.received) == 1 and len(bad.received) == 1


async def test_release_gives_back_claims(wired: Any, peer: Any) -> None:
    _, host = peer
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]
    held: set[int] = set()
    jobs, unavailable = await delivery.claim_deliveries(ctx, held=held)
    assert len(jobs) == 1 and unavailable == set() and (await _delivery(wired)).locked_until is not None
    await delivery.release(ctx, held)
    assert (await _delivery(wired)).locked_until is None


async def test_a_batch_that_fails_to_record_is_let_go_not_held(wired: Any, peer: Any, monkeypatch: Any) -> None:
    """A database failure while recording outcomes must not leave the rows in the worker's held set,
    where the heartbeat would renew their lease for ever: they come back when the lease ends."""
    _, host = peer
    await _enqueue(wired, host)
    ctx = wired.app[FEDERATION]

    async def broken(*args: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(delivery, "record_all", broken)
    held: set[int] = set()
    with pytest.raises(RuntimeError):
        await delivery.deliver_due(ctx, held=held)
    assert held == set()
    row = await _delivery(wired)
    assert (row.state, row.attempts) == (PENDING, 0) and row.locked_until is not None  # nothing recorded
