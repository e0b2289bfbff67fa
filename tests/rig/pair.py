"""Two communes in one process: a.test and b.test, each with its own app and database, partners of
each other, talking through one InProcessTransport. `pair.drain()` runs both instances' queues until
neither has work.

Three communes (`make_trio`): a.test, b.test and c.test, every two of them partners, for what one
commune relays from another to a third (FEP-1b12); a test removes a partnership when it needs to.

The `pair`, `pair_urls`, `trio` and `trio_urls` fixtures live in tests/conftest.py; import only `Pair`
and `Trio` (for annotations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voisinage.federation.context import FEDERATION, FederationContext
from voisinage.federation.partners import add_partner, remove_partner
from voisinage.federation.workers import drain
from voisinage.models.db import write_session
from voisinage.server.app import create_app

from . import cast
from .commune import Commune
from .network import InProcessTransport


class Pair:
    """Communes `a` (a.test) and `b` (b.test) and the transport between them."""

    def __init__(self, a: Commune, b: Commune, network: InProcessTransport) -> None:
        self.a = a
        self.b = b
        self.network = network
        self.communes = {"a.test": a, "b.test": b}

    def commune(self, host: str) -> Commune:
        return self.communes[host]

    @staticmethod
    def ctx(commune: Commune) -> FederationContext:
        return commune.app[FEDERATION]

    async def drain(self, rounds: int = 50) -> None:
        """Run every instance's inbox and delivery queues until all are quiet."""
        for _ in range(rounds):
            done = 0
            for commune in self.communes.values():
                done += await drain(self.ctx(commune))
            if done == 0:
                return
        raise AssertionError("queues never became quiet")

    async def partner(self, commune: Commune, host: str, on: bool = True) -> None:
        async with write_session(commune.sessionmaker) as session:
            if on:
                await add_partner(session, host)
            else:
                await remove_partner(session, host)


class Trio(Pair):
    """Communes `a`, `b` and `c` (c.test), every two of them partners, and the transport between them."""

    def __init__(self, a: Commune, b: Commune, c: Commune, network: InProcessTransport) -> None:
        super().__init__(a, b, network)
        self.c = c
        self.communes["c.test"] = c


async def _start(aiohttp_client: Any, network: InProcessTransport, host: str, url: str, tmp_path: Path) -> Commune:
    from ..conftest import make_settings  # here: conftest imports this module

    folder = tmp_path / host
    folder.mkdir(exist_ok=True)
    client = await aiohttp_client(create_app(make_settings(url, folder, domain=host)))
    client.app[FEDERATION].transport = network
    network.add(host, client)
    return Commune(client)


async def _partners(pair: Pair) -> None:
    """Every commune of the rig names every other one a partner."""
    for host, commune in pair.communes.items():
        for other in pair.communes:
            if other != host:
                await pair.partner(commune, other)


async def make_pair(aiohttp_client: Any, url_a: str, url_b: str, tmp_path: Path,
                    people_a: tuple[str, ...] = ("alder", "birch"),
                    people_b: tuple[str, ...] = ("cedar", "dogwood")) -> Pair:
    network = InProcessTransport()
    a = await (await _start(aiohttp_client, network, "a.test", url_a, tmp_path)).seed(*people_a)
    b = await (await _start(aiohttp_client, network, "b.test", url_b, tmp_path)).seed(*people_b)
    pair = Pair(a, b, network)
    await _partners(pair)
    return pair


async def make_trio(aiohttp_client: Any, urls: tuple[str, str, str], tmp_path: Path) -> Trio:
    """a.test (alder, birch), b.test (cedar, dogwood) and c.test (elm in north, fir in south)."""
    network = InProcessTransport()
    a = await (await _start(aiohttp_client, network, "a.test", urls[0], tmp_path)).seed("alder", "birch")
    b = await (await _start(aiohttp_client, network, "b.test", urls[1], tmp_path)).seed("cedar", "dogwood")
    c = await _start(aiohttp_client, network, "c.test", urls[2], tmp_path)
    for slug in cast.VILLAGES:
        await c.add_village(slug)
    await c.add_resident("elm", "north")  # names of their own: no name means two people in the rig
    await c.add_resident("fir", "south")
    trio = Trio(a, b, c, network)
    await _partners(trio)
    return trio

