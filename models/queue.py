"""Durable work rows: the fields every queue shares, and claiming due rows safely across processes.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` so several workers on several machines never take the
same row. SQLite (one server process): one atomic `UPDATE ... RETURNING`. A claim is a lease
(`locked_until`): a worker that dies (kill -9) leaves rows that become due again when the lease ends.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import Integer, String, Text, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import UtcDateTime, utcnow

PENDING = "pending"
DONE = "done"
FAILED = "failed"  # permanently: no more attempts

Q = TypeVar("Q", bound="QueueMixin")


class QueueMixin:
    state: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


async def claim_due(session: AsyncSession, model: type[Q], *, limit: int, lease: dt.timedelta,
                    now: dt.datetime | None = None, extra: Any = None) -> list[Q]:
    """Take up to `limit` due rows for this worker until `now + lease`; the caller commits."""
    now = now or utcnow()
    due = [model.state == PENDING, model.next_attempt_at <= now,  # type: ignore[attr-defined]
           or_(model.locked_until.is_(None), model.locked_until < now)]  # type: ignore[attr-defined]
    if extra is not None:
        due.append(extra)
    ids_query = select(model.id).where(*due).order_by(model.next_attempt_at).limit(limit)  # type: ignore[attr-defined]
    if session.bind.dialect.name == "postgresql":
        ids_query = ids_query.with_for_update(skip_locked=True)
    stmt = (update(model).where(model.id.in_(ids_query.scalar_subquery()))  # type: ignore[attr-defined]
            .values(locked_until=now + lease).returning(model)
            .execution_options(synchronize_session=False))
    return list((await session.scalars(stmt)).all())
