"""Live events (a new status, a notification, a deletion) from whoever causes them to open streams.

Writers call `queue_event(session, event)` inside their transaction. Events carry ids, not rendered
JSON: each streaming connection renders for its own reader. Delivery happens only if the transaction
commits:
- SQLite (one server process): after commit, to this process's subscribers.
- PostgreSQL (several processes may share the database): `pg_notify` inside the transaction, which
  PostgreSQL delivers on commit to every process LISTENing, this one included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import String, bindparam, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from . import pg_fast
from .db import fast

log = logging.getLogger("voisinage.events")

CHANNEL = "voisinage_events"
_PENDING = "voisinage_pending_events"
NOTIFY_BATCH = 16  # NOTIFYs per statement
MAX_QUEUE = 1000


@dataclass(frozen=True)
class Event:
    """`kind`: update, notification, delete, status.update, filters_changed. `audience`: actor ids the
    event is for (empty: decided by stream, e.g. public timelines). `streams`: stream names it belongs to."""

    kind: str
    object_id: int
    streams: tuple[str, ...] = ()
    audience: tuple[int, ...] = ()

    def dumps(self) -> str:
        return orjson.dumps({"k": self.kind, "o": self.object_id, "s": self.streams, "a": self.audience}).decode()

    @classmethod
    def loads(cls, raw: str | bytes) -> Event:
        data = orjson.loads(raw)
        return cls(data["k"], int(data["o"]), tuple(data["s"]), tuple(int(a) for a in data["a"]))


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUE))
    dropped: int = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:  # a stuck reader must not hold memory or slow writers
            self.dropped += 1

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class EventBus:
    """One per process. `attach(engine)` wires it to the database the events travel through."""

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()
        self._listen_conn: Any = None
        self._postgres = False

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def dispatch(self, event: Event) -> None:
        for sub in list(self.subscribers):
            sub.offer(event)

    async def attach(self, engine: AsyncEngine) -> None:
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:
            await self._listen(engine)

    async def _listen(self, engine: AsyncEngine) -> None:
        import asyncpg

        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listen_conn = await asyncpg.connect(url)

        def on_notify(connection: Any, pid: int, channel: str, payload: str) -> None:
            try:
                self.dispatch(Event.loads(payload))
            except (ValueError, KeyError, TypeError):
                log.warning("ignored a malformed event on %s", channel)

        await self._listen_conn.add_listener(CHANNEL, on_notify)

    async def close(self) -> None:
        if self._listen_conn is not None:
            await self._listen_conn.close()
            self._listen_conn = None

    @property
    def uses_postgres(self) -> bool:
        return self._postgres


def bind_bus(session_factory: Any, bus: EventBus) -> None:
    """Make sessions from this factory deliver queued events to `bus` when they commit."""
    session_factory.configure(info={**(session_factory.kw.get("info") or {}), "event_bus": bus})


@functools.lru_cache(maxsize=NOTIFY_BATCH)
def _notify(count: int) -> Any:
    """`count` NOTIFYs in one statement, sent by PostgreSQL when the transaction commits (so never run
    outside it: `in_transaction`)."""
    channel = bindparam("channel", type_=String())
    return fast(select(*(func.pg_notify(channel, bindparam(f"p{i}", type_=String())) for i in range(count))),
                in_transaction=True)


async def _send_notifies(session: AsyncSession) -> None:
    """The transaction's events as NOTIFYs, just before its commit: one round trip for a post's three."""
    payloads = session.sync_session.info.pop(_PENDING, [])
    for start in range(0, len(payloads), NOTIFY_BATCH):
        chunk = payloads[start:start + NOTIFY_BATCH]
        await session.execute(_notify(len(chunk)), {"channel": CHANNEL, **{f"p{i}": p for i, p in enumerate(chunk)}})


async def queue_event(session: AsyncSession, event: Event) -> None:
    """Send `event` when (and only if) this session's transaction commits."""
    bus: EventBus | None = session.info.get("event_bus")
    if bus is None:
        return
    if bus.uses_postgres:
        session.sync_session.info.setdefault(_PENDING, []).append(event.dumps())
        pg_fast.before_commit(session, _PENDING, _send_notifies)
    else:
        session.sync_session.info.setdefault(_PENDING, []).append(event)


def pending_events(session: Any) -> list[Any]:
    """The events this session's transaction will send at its commit (a list to append to)."""
    return session.sync_session.info.setdefault(_PENDING, [])  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A SAVEPOINT (`begin_nested`) whose rollback also drops the events queued inside it."""
    pending = session.sync_session.info.setdefault(_PENDING, [])
    mark = len(pending)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del pending[mark:]
        raise


# SQLAlchemy tells a SAVEPOINT's release as a commit and its rollback as a rollback: the transaction
# goes on, and its events wait for its end (`savepoint` drops those queued inside a rolled back one).

@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    bus = session.info.get("event_bus")
    if pending and bus is not None:
        for event in pending:
            bus.dispatch(event)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_PENDING, None)
