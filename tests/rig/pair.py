"""Two communes in one process: a.test and b.test, each with its own app and database, partners of
each other, talking through one InProcessTransport. `pair.drain()` runs both instances' queues until
neither has work.

The `pair` and `pair_urls` fixtures live in tests/conftest.py; import only `Pair` (for annotations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voisinage.federation.context import FEDERATION, FederationContext
from voisinage.federation.partners import add_partner, remove_partner
from voisinage.federation.workers import drain
from voisinage.models.db import write_session
from voisinage.server.app import create_app

from .commune import Commune
from .network import InProcessTransport


class Pair:
    """Communes `a` (a.test) and `b` (b.test) and the transport between them."""

    def __init__(self, a: Commune, b: Commune, network: InProcessTransport) -> None:
        self.a = a
        self.b = b
        self.network = network

    def commune(self, host: str) -> Commune:
        return self.a if host == "a.test" else self.b

    @staticmethod
    def ctx(commune: Commune) -> FederationContext:
        return commune.app[FEDERATION]

    async def drain(self, rounds: int = 50) -> None:
        """Run both instances' inbox and delivery queues until both are quiet."""
        for _ in range(rounds):
            done = await drain(self.ctx(self.a)) + await drain(self.ctx(self.b))
            if done == 0:
                return
        raise AssertionError("queues never became quiet")

    async def partner(self, commune: Commune, host: str, on: bool = True) -> None:
        async with write_session(commune.sessionmaker) as session:
            if on:
                await add_partner(session, host)
            else:
                await remove_partner(session, host)


async def make_pair(aiohttp_client: Any, url_a: str, url_b: str, tmp_path: Path,
                    people_a: tuple[str, ...] = ("alder", "birch"),
                    people_b: tuple[str, ...] = ("cedar", "dogwood")) -> Pair:
    from ..conftest import make_settings  # here: conftest imports this module

    network = InProcessTransport()
    communes = []
    for host, url, people in (("a.test", url_a, people_a), ("b.test", url_b, people_b)):
        folder = tmp_path / host
        folder.mkdir(exist_ok=True)
        client = await aiohttp_client(create_app(make_settings(url, folder, domain=host)))
        client.app[FEDERATION].transport = network
        network.add(host, client)
        communes.append(await Commune(client).seed(*people))
    pair = Pair(communes[0], communes[1], network)
    await pair.partner(pair.a, "b.test")
    await pair.partner(pair.b, "a.test")
    return pair

