"""Reliability promises of SECURITY.md, against real `voisinage serve` processes and loopback partners.

- kill -9 in the middle of a fan-out loses no delivery, on both engines (on PostgreSQL the dead
  process's claims come back when their lease ends, shortened here by `lease_env`);
- a receiver that is down (refused, then 503, then hanging past the timeout) gets everything once it
  is back (in-process worker with the context's controllable clock, both engines);
- SIGTERM: a request in flight finishes with 200, the workers give back their claims, exit code 0
  (both engines, with the production lease, so a claim left behind would still be held).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from voisinage.federation import delivery
from voisinage.federation.context import FEDERATION
from voisinage.federation.outbox import publish
from voisinage.federation.transport import Timeouts
from voisinage.models import db
from voisinage.models.actor import Actor
from voisinage.models.delivery import Delivery
from voisinage.models.instance import Instance
from voisinage.models.queue import DONE, PENDING

from ..rig.network import wired_to_loopback
from ..rig.process import (
    ServeProcess,
    add_remote_fans,
    add_resident_in,
    cli,
    free_port,
    in_db,
    lease_env,
    wait_for,
    write_config,
)
from ..rig.process import post as post_status
from .receiver import Receiver

REPORT: dict[str, Any] = {}  # figures the report quotes (duplicates seen, ...)


def seed(url: str, base_url: str, receivers: list[Receiver]) -> str:
    """alder in north, followed by one remote actor on each receiver; returns alder's token."""

    async def work(sessionmaker: Any) -> str:
        async with db.write_session(sessionmaker) as session:
            alder, token = await add_resident_in(session, base_url, "alder")
            await add_remote_fans(session, [r.host for r in receivers], alder)
        return token

    return in_db(url, work)


def deliveries(url: str) -> list[Delivery]:
    async def work(sessionmaker: Any) -> list[Delivery]:
        async with sessionmaker() as session:
            return list(await session.scalars(select(Delivery)))

    return in_db(url, work)


def instance(tmp_path: Path, url: str, receivers: list[Receiver]) -> tuple[ServeProcess, str]:
    port = free_port()
    config = write_config(tmp_path, url, port)
    cli(config, "village", "add", "north", "--name", "Nord")
    token = seed(url, f"http://127.0.0.1:{port}", receivers)
    for r in receivers:
        cli(config, "partner", "add", r.host)
    return ServeProcess(config, port), token


def post(serve: ServeProcess, token: str, text: str) -> str:
    return post_status(serve.url, token, text)["uri"]


@pytest.fixture
def receivers() -> Any:
    made = [Receiver(free_port()).start() for _ in range(3)]
    yield made
    for r in made:
        r.stop()


LEASE_SECONDS = 3.0  # the kill -9 test's lease: renewed every 0.75 s while held, back 3 s after a death


def test_kill_9_during_fan_out_loses_no_delivery(db_url: str, tmp_path: Path, receivers: list[Receiver]) -> None:
    url = db_url
    serve, token = instance(tmp_path, url, receivers)
    serve.env = lease_env(LEASE_SECONDS)
    for r in receivers:
        r.delay = 1.5  # deliveries stay in flight (longer than a heartbeat: their claims are renewed)
    serve.start()
    uris = [post(serve, token, f"Annonce {i}: marché samedi") for i in range(6)]
    # every delivery row exists as soon as the API answered (same transaction as the post)
    rows = deliveries(url)
    assert len(rows) == len(uris) * len(receivers)
    wait_for(lambda: sum(sum(r.raw.values()) for r in receivers) >= 3, "deliveries in flight", 20)
    serve.kill()
    after_kill = deliveries(url)
    unfinished = [d for d in after_kill if d.state != DONE]
    assert unfinished, "the kill came too late to test anything"
    assert all(d.state == PENDING for d in unfinished)  # nothing was marked done or failed by the kill
    claimed = [d for d in unfinished if d.locked_until is not None]
    assert claimed  # claimed by the process that died
    # On SQLite the restarted server gives back the dead process's claims at once (one process per
    # instance); on PostgreSQL, where other processes may be alive, they come back when their lease
    # ends, since no heartbeat renews them any more.
    for r in receivers:
        r.delay = 0
    serve = ServeProcess(serve.config, serve.port, lease_env(LEASE_SECONDS)).start()
    try:
        wait_for(lambda: all(r.stored_objects() >= set(uris) for r in receivers), "every post on every receiver")
        wait_for(lambda: all(d.state == DONE for d in deliveries(url)), "every delivery row done")
    finally:
        assert serve.stop() == 0
    for r in receivers:
        creates = {i for i, a in r.stored.items() if a.get("type") == "Create"}
        assert len(creates) == len(uris)  # one stored activity per post, by id
        assert r.stored_objects() == set(uris)
    REPORT["kill9"] = {"unfinished_at_kill": len(unfinished), "claimed_at_kill": len(claimed),
                       "duplicates": sum(r.duplicates() for r in receivers)}
    print("kill -9 fan-out:", REPORT["kill9"])


# -- a receiver that is down, with the context's clock ------------------------------------------------

T0 = (dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)).timestamp()


@pytest.fixture
async def wired(rig: Any) -> Any:
    async with wired_to_loopback(rig, T0, timeouts=Timeouts(connect=1.0, total=1.0)) as wired_rig:
        yield wired_rig


async def test_receiver_down_refused_then_503_then_timeout_gets_everything_when_back(wired: Any) -> None:
    ctx = wired.app[FEDERATION]
    port = free_port()
    receiver = Receiver(port)  # not started: connection refused
    host = receiver.host
    ids = []
    async with db.write_session(wired.sessionmaker) as session:
        session.add(Instance(host=host, partner=True, blocked=False, failure_days=[]))
        await session.flush()
        alder = await session.get(Actor, wired["alder"].actor_id)
        for i in range(3):
            activity = {"id": f"{alder.uri}#down/{i}", "type": "Create", "actor": alder.uri,
                        "object": {"id": f"{alder.uri}/statuses/down{i}", "type": "Note"}}
            ids.append(activity["id"])
            await publish(session, ctx, activity, alder, [f"http://{host}/inbox"])

    async def attempt_all() -> None:
        wired.clock["now"] += 2 * 86400 // 48  # one hour later: past any early backoff
        assert await delivery.deliver_due(ctx) == 3

    async def states() -> list[tuple[str, int]]:
        return sorted((d.state, d.attempts) for d in await wired.rows(Delivery))

    wired.clock["now"] -= 3600
    await attempt_all()  # refused
    assert await states() == [(PENDING, 1)] * 3
    receiver.status = 503
    receiver.start()
    try:
        await attempt_all()  # 503
        assert await states() == [(PENDING, 2)] * 3
        receiver.status, receiver.delay = 202, 3.0  # answers too late: the 1 s timeout aborts
        await attempt_all()
        assert await states() == [(PENDING, 3)] * 3
        receiver.delay = 0
        await attempt_all()  # back
        assert await states() == [(DONE, 4)] * 3
        assert set(receiver.stored) >= set(ids)
        assert all(receiver.raw[i] == 3 for i in ids)  # 503, timeout, 202 (refused never arrived)
        inst = (await wired.rows(Instance, Instance.host == host))[0]
        assert inst.unavailable_since is None
    finally:
        receiver.stop()


# -- SIGTERM ---------------------------------------------------------------------------------------

def test_sigterm_finishes_requests_and_releases_claims(db_url: str, tmp_path: Path,
                                                       receivers: list[Receiver]) -> None:
    url = db_url
    serve, token = instance(tmp_path, url, receivers)
    for r in receivers:
        r.delay = 8.0  # deliveries are in flight (claimed) when SIGTERM comes
        r.get_delay = 2.0  # webfinger of a partner answers slowly: the search below is a slow request
    serve.start()
    post(serve, token, "Fête du village")
    wait_for(lambda: all(sum(r.raw.values()) >= 1 for r in receivers), "deliveries in flight", 10)
    assert any(d.locked_until is not None for d in deliveries(url))
    slow: dict[str, Any] = {}

    def search() -> None:
        started = time.time()
        slow["response"] = requests.get(f"{serve.url}/api/v2/search",
                                        params={"q": f"@someone@{receivers[0].host}", "resolve": "true"},
                                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
        slow["seconds"] = time.time() - started

    thread = threading.Thread(target=search)
    thread.start()
    time.sleep(0.7)  # the search is waiting on the slow partner
    serve.proc.send_signal(signal.SIGTERM)
    code = serve.proc.wait(30)
    serve.log.close()
    thread.join(30)
    assert code == 0
    assert slow["response"].status_code == 200 and slow["seconds"] >= 1.5, slow
    now = dt.datetime.now(dt.UTC)
    rows = deliveries(url)
    assert rows and all(d.locked_until is None or d.locked_until <= now for d in rows), \
        [(d.state, d.locked_until) for d in rows]
    assert all(d.state in (PENDING, DONE) for d in rows)
