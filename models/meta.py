"""Small shared state every process must agree on: instance secrets, id nodes, rate-limit counters,
Idempotency-Key results."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin
from .db import dialect_insert, execute_alone, fast


class MetaValue(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class IdNode(TimestampMixin, Base):
    """One row per process start: `node` is the node part of the ids the process mints, held while the
    process renews `seen_at` (`models.db.claim_node`); no two live processes hold the same node."""

    __tablename__ = "id_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[int | None] = mapped_column(Integer)
    seen_at: Mapped[dt.datetime | None] = mapped_column()


class RateCounter(Base):
    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(primary_key=True)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)


class IdempotentResult(TimestampMixin, Base):
    """`Idempotency-Key` of POST /api/v1/statuses: the first answer, replayed for an hour."""

    __tablename__ = "idempotent_results"

    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))


async def get_or_create_secret(session: AsyncSession, key: str, nbytes: int = 32) -> str:
    """A random secret stored once in the database, so every process shares it."""
    stmt = dialect_insert(session)(MetaValue).values(key=key, value=secrets.token_hex(nbytes))
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    return await session.scalar(select(MetaValue.value).where(MetaValue.key == key))


async def hit_counter(session: AsyncSession, key: str, window_seconds: int, now: float) -> tuple[int, int]:
    """Count one more event for `key` in the current fixed window. Returns (count, window end)."""
    start = int(now) - int(now) % window_seconds
    rows = await session.execute(_hits(session.bind.dialect.name, 1), {"start": start, "key_0": key})
    (_, count), = rows.all()  # by position: a Row's `count` is the tuple method
    return int(count), start + window_seconds


async def hit_counters_alone(sessionmaker: Any, keys: list[str], window_seconds: int,
                             now: float) -> tuple[dict[str, int], int]:
    """Count one more event for each of `keys` in the current fixed window, in one statement that is a
    transaction by itself (`db.execute_alone`: one round trip on PostgreSQL). Returns ({key: count},
    window end)."""
    start = int(now) - int(now) % window_seconds
    keys = list(dict.fromkeys(keys))  # a row once: ON CONFLICT cannot update a row twice
    engine = sessionmaker.kw["bind"]
    rows = await execute_alone(sessionmaker, _hits(engine.dialect.name, len(keys)),
                               {"start": start, **{f"key_{index}": key for index, key in enumerate(keys)}})
    return {key: int(count) for key, count in rows}, start + window_seconds


@functools.lru_cache(maxsize=16)
def _hits(dialect: str, count: int) -> Any:
    """INSERT ... ON CONFLICT of `count` counters (parameters `start`, `key_0`...), built once per dialect
    and number of keys."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = RateCounter.__table__
    start = bindparam("start", type_=table.c.window_start.type)
    statement = insert(table).values([{"key": bindparam(f"key_{index}", type_=table.c.key.type),
                                       "window_start": start, "count": 1} for index in range(count)])
    return fast(statement.on_conflict_do_update(index_elements=["key", "window_start"],
                                                set_={"count": table.c.count + 1})
                .returning(table.c.key, table.c.count), alone=True)


async def read_counter(session: AsyncSession, key: str, window_seconds: int, now: float) -> tuple[int, int]:
    start = int(now) - int(now) % window_seconds
    count = await session.scalar(
        select(RateCounter.count).where(RateCounter.key == key, RateCounter.window_start == start))
    return int(count or 0), start + window_seconds


async def prune_counters(session: AsyncSession, older_than: float) -> None:
    await session.execute(delete(RateCounter).where(RateCounter.window_start < int(older_than)))
