"""Pinned statuses: an author features up to five of their own statuses on their profile."""

from __future__ import annotations

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

MAX_PINS = 5  # Mastodon's StatusPinValidator limit


class Pin(TimestampMixin, Base):
    __tablename__ = "pins"
    __table_args__ = (UniqueConstraint("actor_id", "post_id"),)

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
