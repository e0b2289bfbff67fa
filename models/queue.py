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
import functools
import os
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Integer, String, Text, bindparam, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import UtcDateTime, utcnow
from .db import fast
from .ids import id_at

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
    """A queue's fields. Each queue table has one index for its claim, (state, next_attempt_at), named
    `ix_<table>_due`: an index more is written for every row queued and finished."""

    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


async def claim_due(session: AsyncSession, model: type[Q], *, limit: int, lease: dt.timedelta,
                    now: dt.datetime | None = None, columns: tuple[str, ...] = ()) -> list[Any]:
    """Take up to `limit` due rows for this worker until `now + lease`; the caller commits. Returns
    plain rows (a worker reads them; the ORM took a third of the delivery loop's claim) of `id`,
    `next_attempt_at` and `columns`, due first."""
    now = now or utcnow()
    postgres = session.bind.dialect.name == "postgresql"
    if postgres:
        # Planned for each claim: a prepared statement's plan made generic while the queue was empty (an
        # idle server polls) walks every row once the queue fills, and stays until the next ANALYZE. It
        # divided a fan-out's deliveries/s by 2.5.
        await session.execute(_CUSTOM_PLANS)
    statement = _claim_statement(model, postgres, columns)
    rows = (await session.execute(statement, {"now": now, "until": now + lease, "limit": limit})).all()
    # RETURNING gives rows in the order they were updated, not the ORDER BY's: a Create and its Delete
    # claimed together must still be handled in the order they arrived.
    return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")  # until the transaction ends


@functools.cache
def _claim_statement(model: Any, skip_locked: bool, columns: tuple[str, ...]) -> Any:
    """`UPDATE ... RETURNING` of the due rows, built once per queue (PostgreSQL: `FOR UPDATE SKIP LOCKED`
    so that concurrent workers never take the same row; SQLite's writes are serial)."""
    table = model.__table__
    now = bindparam("now", type_=UtcDateTime())
    ids = (select(table.c.id)
           .where(table.c.state == PENDING, table.c.next_attempt_at <= now,
                  or_(table.c.locked_until.is_(None), table.c.locked_until < now))
           .order_by(table.c.next_attempt_at).limit(bindparam("limit", type_=Integer())))
    if skip_locked:
        ids = ids.with_for_update(skip_locked=True)
    returned = [table.c[name] for name in dict.fromkeys(("id", "next_attempt_at", *columns))]
    return fast(update(table).where(table.c.id.in_(ids.scalar_subquery()))
                .values(locked_until=bindparam("until", type_=UtcDateTime())).returning(*returned))


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


# Finished rows (done or failed) are kept this long, for an admin looking into a partner's trouble and as
# the inbox's memory of activities already received (senders retry a failed delivery for about two days).
FINISHED_KEPT = dt.timedelta(days=7)


async def prune_finished(session: AsyncSession, model: Any, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` rows of the queue that finished and were queued before `before`, oldest
    first; returns how many. Ids grow with time (models/ids.py): the primary key finds them."""
    table = model.__table__
    old = (select(table.c.id).where(table.c.id < id_at(before.timestamp()), table.c.state != PENDING)
           .order_by(table.c.id).limit(limit))
    result = await session.execute(delete(table).where(table.c.id.in_(old.scalar_subquery())))
    return int(result.rowcount or 0)
