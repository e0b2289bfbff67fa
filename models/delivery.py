"""The transactional outbox: an activity rendered once, and one Delivery row per receiving inbox.

Both are written in the same transaction as the post that causes them, so a crash loses nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column
from .ids import id_at
from .queue import QueueMixin


class OutgoingActivity(TimestampMixin, Base):
    __tablename__ = "outgoing_activities"

    id: Mapped[int] = id_column()
    activity_uri: Mapped[str] = mapped_column(String(512), index=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the JSON exactly as sent


class Delivery(QueueMixin, TimestampMixin, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("outgoing_id", "inbox_uri"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = id_column()
    # (outgoing_id, inbox_uri) is unique: that index also finds an activity's deliveries (the prune, the
    # cascade), so outgoing_id has none of its own; nothing looks deliveries up by host.
    outgoing_id: Mapped[int] = mapped_column(ForeignKey("outgoing_activities.id", ondelete="CASCADE"))
    inbox_uri: Mapped[str] = mapped_column(String(512))
    host: Mapped[str] = mapped_column(String(255))


async def prune_sent(session: AsyncSession, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` outgoing activities stored before `before` that have no delivery left (all
    finished and pruned: nothing will send them again), oldest first; returns how many."""
    sent, deliveries = OutgoingActivity.__table__, Delivery.__table__
    old = (select(sent.c.id).where(sent.c.id < id_at(before.timestamp()),
                                   ~exists().where(deliveries.c.outgoing_id == sent.c.id))
           .order_by(sent.c.id).limit(limit))
    result = await session.execute(delete(sent).where(sent.c.id.in_(old.scalar_subquery())))
    return int(result.rowcount or 0)
