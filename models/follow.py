"""Follows between actors; `pending` until accepted (locked accounts, villages of other instances)."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

PENDING = "pending"
ACCEPTED = "accepted"


class Follow(TimestampMixin, Base):
    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("follower_id", "target_id"),
        Index("ix_follows_target_id_state", "target_id", "state"),
    )

    id: Mapped[int] = id_column()
    follower_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10), default=PENDING)
    uri: Mapped[str | None] = mapped_column(String(512), unique=True)
    show_reblogs: Mapped[bool] = mapped_column(Boolean, default=True)
    notify: Mapped[bool] = mapped_column(Boolean, default=False)
