"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server started here.

`VOISINAGE_TEST_DATABASES=sqlite` (or `postgresql`) narrows the run while developing; `make test`
runs both.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voisinage.models import db as dbmod
from voisinage.server.app import create_app
from voisinage.server.settings import Settings

from .rig.commune import Commune
from .rig.pair import Pair, Trio, make_pair, make_trio
from .rig.pg import PostgresServer

BACKENDS = [b.strip() for b in os.environ.get("VOISINAGE_TEST_DATABASES", "sqlite,postgresql").split(",")
            if b.strip()]
_counter = itertools.count()


async def _migrate(url: str) -> None:
    engine = dbmod.make_engine(url)
    await dbmod.migrate(engine)
    await engine.dispose()


class Databases:
    """Migrates one template database per engine once; each test gets a fresh copy of it.

    PostgreSQL copies a template in 0.1 to 0.4 s, about half a test's time: a thread makes the next
    copies while the tests run (they wait on their sockets more than they compute)."""

    AHEAD = 2  # PostgreSQL databases kept made in advance

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="voisinage-test-"))
        self.sqlite_template: Path | None = None
        self.pg: PostgresServer | None = None
        self.pg_url: str | None = None
        self._made: queue.Queue[str | BaseException] = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._maker: threading.Thread | None = None
        self._failed: BaseException | None = None

    def sqlite(self) -> str:
        if self.sqlite_template is None:
            template = self.tmp / "template.db"
            asyncio.run(_migrate(f"sqlite+aiosqlite:///{template}"))
            self.sqlite_template = template
        copy = self.tmp / f"test{next(_counter)}.db"
        shutil.copyfile(self.sqlite_template, copy)
        return f"sqlite+aiosqlite:///{copy}"

    def postgresql(self) -> str:
        if self.pg_url is None:
            self.pg = PostgresServer()
            self.pg_url = self.pg.start()
            asyncio.run(self._admin("CREATE DATABASE vtemplate"))
            asyncio.run(_migrate(f"{self.pg_url}/vtemplate"))
            self._maker = threading.Thread(target=lambda: asyncio.run(self._make_ahead()), daemon=True)
            self._maker.start()
        if self._failed is not None:
            raise self._failed
        made = self._made.get(timeout=120)
        if isinstance(made, BaseException):
            self._failed = made  # the thread has stopped: every later test fails at once with the cause
            raise made
        return f"{self.pg_url}/{made}"

    async def _make_ahead(self) -> None:
        """Copies of the template, each put in the queue as soon as made (waits while it is full); an
        error goes in the queue in place of a database, and the thread stops."""
        import asyncpg

        try:
            conn = await asyncpg.connect(self._admin_dsn())
        except Exception as error:  # noqa: BLE001  # handed to the test that waits for a database
            self._hand(error)
            return
        try:
            while not self._stop.is_set():
                name = f"test{next(_counter)}"
                try:
                    await conn.execute(f"CREATE DATABASE {name} TEMPLATE vtemplate")
                except Exception as error:  # noqa: BLE001
                    self._hand(error)
                    return
                self._hand(name)
        finally:
            await conn.close()

    def _hand(self, made: str | BaseException) -> None:
        """Put `made` in the queue once there is room, unless the session ends first."""
        while not self._stop.is_set():
            try:
                self._made.put(made, timeout=0.2)
                return
            except queue.Full:
                continue

    def _admin_dsn(self) -> str:
        assert self.pg_url is not None
        return self.pg_url.replace("postgresql+asyncpg", "postgresql") + "/postgres"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._admin_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def close(self) -> None:
        self._stop.set()
        if self._maker is not None:
            self._maker.join(timeout=10)
        if self.pg is not None:
            self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    dbs = Databases()
    yield dbs
    dbs.close()


@pytest.fixture(autouse=True)
def _fresh_status_renderings() -> None:
    """Each test has databases of its own, the cache of posts' renderings is the process's: keep none."""
    from voisinage.server.api import to_api

    to_api._STATUSES.clear()


@pytest.fixture(params=BACKENDS)
def db_url(request: Any, databases: Databases) -> str:
    return getattr(databases, request.param)()


def make_settings(db_url: str, tmp_path: Path, domain: str = "a.test", **sections: Any) -> Settings:
    settings = Settings(run_workers=False).replace(
        instance={"domain": domain, "name": "Commune de Test", "scheme": "https"},
        database={"url": db_url},
        media={"path": str(tmp_path / "media")},
    )
    return settings.replace(**sections) if sections else settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> Any:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def commune(client: Any) -> Commune:
    """An instance with the cast's villages and no resident yet."""
    return await _villages_only(client)


async def _villages_only(client: Any) -> Commune:
    c = Commune(client)
    from .rig import cast

    for slug in cast.VILLAGES:
        await c.add_village(slug)
    return c


@pytest.fixture
async def rig(client: Any) -> Commune:
    """An instance with the whole cast: villages north/south/east, residents alder, birch (north),
    cedar (south), dogwood (east), each with a token for every scope."""
    return await Commune(client).seed()


@pytest.fixture(params=BACKENDS)
def pair_urls(request: Any, databases: Databases) -> tuple[str, str]:
    """Two fresh databases of the same engine (made outside the event loop)."""
    backend = request.param
    return getattr(databases, backend)(), getattr(databases, backend)()


@pytest.fixture
async def pair(pair_urls: tuple[str, str], aiohttp_client: Any, tmp_path: Path) -> Pair:
    """a.test (residents alder, birch) and b.test (cedar, dogwood), partners of each other, talking
    through one InProcessTransport (tests/rig/pair.py)."""
    return await make_pair(aiohttp_client, pair_urls[0], pair_urls[1], tmp_path)


@pytest.fixture(params=BACKENDS)
def trio_urls(request: Any, databases: Databases) -> tuple[str, str, str]:
    """Three fresh databases of the same engine (made outside the event loop)."""
    make = getattr(databases, request.param)
    return make(), make(), make()


@pytest.fixture
async def trio(trio_urls: tuple[str, str, str], aiohttp_client: Any, tmp_path: Path) -> Trio:
    """a.test (alder, birch), b.test (cedar, dogwood) and c.test (elm, fir), every two of them partners
    (tests/rig/pair.py)."""
    return await make_trio(aiohttp_client, trio_urls, tmp_path)
