"""Durable work rows: the fields every queue shares, and claiming due rows safely across processes.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` so several workers on several machines never take the
same row. SQLite (one server process): one atomic `UPDATE ... RETURNING`. A claim is a short lease
(`locked_until`, LEASE) that the live worker renews while it still holds the row (`renew_claims`, its
heartbeat): a worker that dies (kill -9) stops renewing, and its rows are due again for any process
within one lease. `$VOISINAGE_TEST_LEASE_SECONDS` shortens the lease for tests of real processes; it
is not a config key.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Integer, String, Text, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import UtcDateTime, utcnow

PENDING = "pending"
DONE = "done"
FAILED = "failed"  # permanently: no more attempts

Q = TypeVar("Q", bound="QueueMixin")


def _lease() -> dt.timedelta:
    seconds = float(os.environ.get("VOISINAGE_TEST_LEASE_SECONDS") or 60)
    return dt.timedelta(seconds=max(seconds, 0.5))


LEASE = _lease()
HEARTBEAT_SECONDS = LEASE.total_seconds() / 4  # a holder renews well before its lease ends


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
    # RETURNING gives rows in the order they were updated, not the ORDER BY's: a Create and its Delete
    # claimed together must still be handled in the order they arrived.
    rows = (await session.scalars(stmt)).all()
    return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))  # type: ignore[attr-defined]


async def renew_claims(session: AsyncSession, model: type[Q], ids: Iterable[int], *, lease: dt.timedelta,
                       now: dt.datetime | None = None) -> int:
    """Extend to `now + lease` the claims on `ids` that are still pending and held; the caller commits.

    A row already finished or given back (`locked_until` NULL) is left alone."""
    wanted = list(ids)
    if not wanted:
        return 0
    now = now or utcnow()
    stmt = (update(model).where(model.id.in_(wanted), model.state == PENDING,  # type: ignore[attr-defined]
                                model.locked_until.is_not(None))  # type: ignore[attr-defined]
            .values(locked_until=now + lease).execution_options(synchronize_session=False))
    result = await session.execute(stmt)
    return result.rowcount or 0
