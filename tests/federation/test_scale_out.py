"""Scale-out on one PostgreSQL database: two `voisinage serve` processes (one config, two ports) and
one `voisinage worker` behave as one instance.

Residents post through both serve processes at once; all three processes claim from the one delivery
queue; every loopback receiver (a partner whose actor follows the village) gets each post's Announce
exactly once, counted at the HTTP level by activity id. One receiver answers more slowly than the
(shortened) lease lasts, so only the holders' heartbeats keep the other processes from taking those
deliveries again. Ids minted by the two serve processes carry
different node numbers, so they never collide. A post made through serve #1 shows in a home timeline
read through serve #2.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from voisinage.models import db
from voisinage.models.actor import Actor
from voisinage.models.delivery import Delivery
from voisinage.models.queue import DONE

from ..conftest import BACKENDS
from ..rig.process import (
    ServeProcess,
    WorkerProcess,
    add_remote_fans,
    add_resident_in,
    cli,
    free_ports,
    in_db,
    lease_env,
    post,
    wait_for,
    write_config,
)
from ..security.receiver import Receiver

RECEIVERS = 4
POSTS_PER_WRITER = 6  # each of the four writers (two residents on each serve process)
LEASE_SECONDS = 2.0  # renewed every 0.5 s while held
SLOW_SECONDS = 3.5  # the first receiver's answers outlast a lease


def seed(url: str, base_url: str, receivers: list[Receiver], slug: str,
         residents: dict[str, str]) -> dict[str, str]:
    """One actor on each receiver follows our village `slug` (as a partner's resident would), and
    `residents` (name -> village) register; returns their tokens."""

    async def work(sessionmaker: Any) -> dict[str, str]:
        async with db.write_session(sessionmaker) as session:
            tokens = {name: (await add_resident_in(session, base_url, name, village))[1]
                      for name, village in residents.items()}
            village = await session.scalar(select(Actor).where(Actor.username == slug, Actor.domain == ""))
            await add_remote_fans(session, [r.host for r in receivers], village)
        return tokens

    return in_db(url, work)


def delivery_states(url: str) -> dict[str, int]:
    async def work(sessionmaker: Any) -> dict[str, int]:
        async with sessionmaker() as session:
            rows = await session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return {state: count for state, count in rows}

    return in_db(url, work)


def node_of(status_id: str) -> int:
    """The node part of an id (models/ids.py: milliseconds, 8 bits of node, 8 bits of sequence)."""
    return (int(status_id) >> 8) & 0xFF


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="scale-out needs PostgreSQL")
def test_two_serve_processes_and_a_worker_deliver_each_post_once(databases: Any, tmp_path: Path) -> None:
    url = databases.postgresql()
    port_1, port_2, *receiver_ports = free_ports(2 + RECEIVERS)
    config = write_config(tmp_path, url, port_1)
    cli(config, "village", "add", "north", "--name", "Nord")
    cli(config, "village", "add", "south", "--name", "Sud")
    receivers = [Receiver(port).start() for port in receiver_ports]
    processes: list[ServeProcess] = []
    try:
        for r in receivers:
            r.delay = 0.05  # deliveries overlap across the three processes
            cli(config, "partner", "add", r.host)
        receivers[0].delay = SLOW_SECONDS
        tokens = seed(url, f"http://127.0.0.1:{port_1}", receivers, "north",
                      {"alder": "north", "birch": "north", "hazel": "north", "rowan": "north", "cedar": "south"})
        reader = tokens.pop("cedar")
        writers = tokens
        env = lease_env(LEASE_SECONDS)
        serve_1 = ServeProcess(config, port_1, env, log_name="serve-1.log").start()
        serve_2 = ServeProcess(config, port_2, env, log_name="serve-2.log").start()
        worker = WorkerProcess(config, env).start()
        processes += [serve_1, serve_2, worker]
        through = {"alder": serve_1, "birch": serve_1, "hazel": serve_2, "rowan": serve_2}

        # cedar (south) follows alder through serve #2; alder posts through serve #1
        alder = requests.get(f"{serve_2.url}/api/v1/accounts/lookup", params={"acct": "alder"},
                             headers={"Authorization": f"Bearer {reader}"}, timeout=10).json()
        followed = requests.post(f"{serve_2.url}/api/v1/accounts/{alder['id']}/follow",
                                 headers={"Authorization": f"Bearer {reader}"}, timeout=10)
        assert followed.status_code == 200 and followed.json()["following"], followed.text

        made: dict[str, list[dict[str, Any]]] = {name: [] for name in writers}
        errors: list[BaseException] = []

        def write(name: str) -> None:
            try:
                for i in range(POSTS_PER_WRITER):
                    made[name].append(post(through[name].url, writers[name], f"{name}: annonce {i}"))
            except BaseException as exc:  # reported below: a thread's assertion would be lost
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(name,)) for name in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        statuses = [s for name in writers for s in made[name]]
        assert len(statuses) == len(writers) * POSTS_PER_WRITER
        ids = [s["id"] for s in statuses]
        assert len(set(ids)) == len(ids)
        nodes_1 = {node_of(s["id"]) for name in ("alder", "birch") for s in made[name]}
        nodes_2 = {node_of(s["id"]) for name in ("hazel", "rowan") for s in made[name]}
        assert len(nodes_1) == 1 and len(nodes_2) == 1 and nodes_1 != nodes_2  # one node per process

        uris = {s["uri"] for s in statuses}
        wait_for(lambda: all(r.stored_objects() >= uris for r in receivers), "every post on every receiver", 60)
        wait_for(lambda: delivery_states(url) == {DONE: len(uris) * RECEIVERS}, "every delivery row done", 20)
        for r in receivers:
            assert r.stored_objects() == uris
            assert len(r.raw) == len(uris)  # one activity (the village's Announce) per post
            assert all(a.get("type") == "Announce" for a in r.stored.values())
            assert r.duplicates() == 0, {i: n for i, n in r.raw.items() if n > 1}

        def home() -> list[str]:
            got = requests.get(f"{serve_2.url}/api/v1/timelines/home", params={"limit": 40},
                               headers={"Authorization": f"Bearer {reader}"}, timeout=10)
            assert got.status_code == 200, got.text
            return [s["id"] for s in got.json()]

        alder_ids = {s["id"] for s in made["alder"]}
        shown = home()
        assert alder_ids <= set(shown)
        assert not set(shown) & {s["id"] for s in made["hazel"]}  # cedar follows neither hazel nor north
    finally:
        codes = [p.stop() for p in processes]
        for r in receivers:
            r.stop()
    assert codes == [0, 0, 0]
    logs = "".join(p.log_path.read_text(errors="replace") for p in processes)
    assert "Traceback" not in logs, logs[-3000:]
