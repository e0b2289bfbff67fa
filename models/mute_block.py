"""Mutes and blocks between accounts (Mastodon's): a mute hides, a block separates.

A `Mute` hides the target's statuses (and boosts of them, and their boosts) from the muter's timelines,
and their notifications when `notifications` is true, until `expires_at` (None: forever). The muter may
still open the target's statuses directly. A `Block` works both ways: the two see nothing of each other
(`models.audience` puts it into the one visibility rule and its inverse).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class Mute(TimestampMixin, Base):
    __tablename__ = "mutes"
    __table_args__ = (UniqueConstraint("actor_id", "target_id"),)

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[dt.datetime | None]


class Block(TimestampMixin, Base):
    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("actor_id", "target_id"), Index("ix_blocks_target_id", "target_id"))

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    uri: Mapped[str | None] = mapped_column(String(512), unique=True)
