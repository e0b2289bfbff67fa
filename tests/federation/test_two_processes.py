"""Two real `voisinage serve` processes on loopback ports federate over real sockets: partners made
with the CLI, a neighbour link (`voisinage neighbour add`), a resident's public post on A, made through
the client API and federated by A itself, arriving in the home timeline of a resident of B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from voisinage.models.actor import Actor
from voisinage.models.delivery import Delivery
from voisinage.models.follow import ACCEPTED, Follow

from ..rig.process import ServeProcess, add_resident, cli, free_port, in_db, wait_for, write_config


def test_two_serve_processes_federate(pair_urls: tuple[str, str], tmp_path: Path) -> None:
    url_a, url_b = pair_urls
    port_a, port_b = free_port(), free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    conf_a = write_config(tmp_path / "a", url_a, port_a)
    conf_b = write_config(tmp_path / "b", url_b, port_b)
    host_a, host_b = f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}"
    for conf in (conf_a, conf_b):
        cli(conf, "village", "add", "north", "--name", "Nord")
    cli(conf_a, "partner", "add", host_b)
    cli(conf_b, "partner", "add", host_a)
    assert cli(conf_a, "partner", "list").split() == [host_b]
    a = ServeProcess(conf_a, port_a).start()
    b = ServeProcess(conf_b, port_b).start()
    try:
        out = cli(conf_b, "neighbour", "add", "north", f"@north@{host_a}")
        assert f"north@{host_a}" in out

        def linked() -> bool:
            async def work(sessionmaker: Any) -> bool:
                async with sessionmaker() as session:
                    return await session.scalar(select(Follow.state).join(Actor, Actor.id == Follow.target_id)
                                                .where(Actor.domain == host_a)) == ACCEPTED
            return bool(in_db(url_b, work))

        wait_for(linked, "the Accept of the neighbour link")
        token = add_resident(url_a, a.url, "alder")
        reader = add_resident(url_b, b.url, "cedar")  # in B's north, which follows A's north
        answer = requests.post(f"{a.url}/api/v1/statuses", json={"status": "Fête du village", "visibility": "public"},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        uri = answer.json()["uri"]

        def timeline(path: str) -> list[str]:
            got = requests.get(f"{b.url}{path}", headers={"Authorization": f"Bearer {reader}"}, timeout=10)
            assert got.status_code == 200, got.text
            return [(s.get("reblog") or s)["uri"] for s in got.json()]

        try:
            wait_for(lambda: uri in timeline("/api/v1/timelines/home"), "the post in a home timeline on B")
        except AssertionError:
            async def deliveries(sessionmaker: Any) -> Any:
                async with sessionmaker() as session:
                    return [(d.inbox_uri, d.state, d.last_error) for d in await session.scalars(select(Delivery))]
            raise AssertionError(f"not arrived; deliveries on A: {in_db(url_a, deliveries)}") from None
        assert uri in timeline("/api/v1/timelines/public?remote=true")
        assert timeline("/api/v1/timelines/home").count(uri) == 1
    finally:
        codes = (a.stop(), b.stop())
    assert codes == (0, 0)
