"""The transactional outbox: an activity rendered once, and one Delivery row per receiving inbox.

Both are written in the same transaction as the post that causes them, so a crash loses nothing.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column
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
    outgoing_id: Mapped[int] = mapped_column(ForeignKey("outgoing_activities.id", ondelete="CASCADE"), index=True)
    inbox_uri: Mapped[str] = mapped_column(String(512))
    host: Mapped[str] = mapped_column(String(255), index=True)
