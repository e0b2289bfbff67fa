"""Commune: one instance under test (own app, own database, own TestClient) and its named cast."""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voisinage.models.db import write_session
from voisinage.models.oauth import Application, Token, token_digest
from voisinage.server.keys import CLOCK, SESSIONMAKER, SETTINGS
from voisinage.server.services import registration, villages
from voisinage.server.services.passwords import hash_password

from . import cast

ALL_SCOPES = "read write follow push"


@functools.cache
def cast_password_hash() -> str:
    """The cast's one password, hashed once per test session (argon2 is slow on purpose)."""
    return hash_password(cast.PASSWORD)


@dataclass
class Person:
    """A registered resident with a token for every scope."""

    name: str
    actor_id: int
    username: str
    token: str
    village: str

    @property
    def id(self) -> str:
        return str(self.actor_id)


class Api:
    """Calls the client API as one resident (or anonymously) and returns (status, json)."""

    def __init__(self, client: Any, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.token:
            out.setdefault("Authorization", f"Bearer {self.token}")
        return out

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   params: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.client.request(method, path, json=json, data=data, params=params,
                                       headers=self._headers(headers)) as response:
            self.last = response
            body = await response.read()
            try:
                payload = await response.json(content_type=None) if body else None
            except ValueError:
                payload = body.decode(errors="replace")
            return response.status, payload

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("PATCH", path, **kw)

    async def put(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("DELETE", path, **kw)


class Commune:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.app = client.app if hasattr(client, "app") else client.server.app
        self.people: dict[str, Person] = {}
        self.village_ids: dict[str, int] = {}

    def hold_clock(self) -> Commune:
        """Stop the app's clock at this moment: a test counting requests against a rate limit's fixed
        window must not see the window turn over between two of them (a 5-minute window turns every
        300 s of the wall clock, whenever the test runs)."""
        now = time.time()
        self.app[CLOCK] = lambda: now
        return self

    @property
    def settings(self) -> Any:
        return self.app[SETTINGS]

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.app[SESSIONMAKER]

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def api(self, who: str | Person | None = None) -> Api:
        if who is None:
            return Api(self.client, None)
        person = self.people[who] if isinstance(who, str) else who
        return Api(self.client, person.token)

    def __getitem__(self, name: str) -> Person:
        return self.people[name]

    async def add_village(self, slug: str, name: str | None = None) -> int:
        async with write_session(self.sessionmaker) as session:
            village = await villages.create_village(session, self.base_url, slug, name or cast.VILLAGES[slug])
        self.village_ids[slug] = village.actor_id
        return village.actor_id

    async def codes(self, slug: str, count: int = 1, uses: int = 4) -> list[str]:
        async with write_session(self.sessionmaker) as session:
            issued = await villages.generate_codes(session, slug, count, uses)
        return [i.code for i in issued]

    async def token_for(self, actor_id: int, scopes: str = ALL_SCOPES) -> str:
        token = secrets.token_urlsafe(32)
        async with write_session(self.sessionmaker) as session:
            app = Application(name="rig", client_id=secrets.token_hex(16), client_secret=secrets.token_hex(16),
                              redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes=scopes)
            session.add(app)
            await session.flush()
            session.add(Token(token_hash=token_digest(token), application_id=app.id, actor_id=actor_id,
                              scopes=scopes))
        return token

    async def add_resident(self, name: str, village: str | None = None, display_name: str | None = None) -> Person:
        home, default_display = cast.RESIDENTS.get(name, (village, name.title() + " Test"))
        village = village or home
        if village not in self.village_ids:
            await self.add_village(village)
        code = (await self.codes(village))[0]
        async with write_session(self.sessionmaker) as session:
            actor = await registration.register_resident(session, self.base_url, registration.NewResident(
                code=code, display_name=display_name or default_display, email=f"{name}@example.org",
                password=cast.PASSWORD, username=name, password_hash=cast_password_hash()))
        person = Person(name, actor.id, actor.username, await self.token_for(actor.id), village)
        self.people[name] = person
        return person

    async def seed(self, *names: str) -> Commune:
        """The villages of the cast, then the named residents (all of them when none is named)."""
        for slug in cast.VILLAGES:
            if slug not in self.village_ids:
                await self.add_village(slug)
        for name in names or tuple(cast.RESIDENTS):
            await self.add_resident(name)
        return self

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.sessionmaker() as session:
            return list(await session.scalars(select(model).where(*where)))

    async def drain(self) -> int:
        """Run the inbox and delivery workers until both queues are empty; returns rows handled."""
        from voisinage.federation.context import FEDERATION
        from voisinage.federation.workers import drain

        return await drain(self.app[FEDERATION])
