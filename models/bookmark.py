"""Bookmarks: a resident's private list of statuses to read again (Mastodon's Bookmark)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class Bookmark(TimestampMixin, Base):
    __tablename__ = "bookmarks"
    __table_args__ = (UniqueConstraint("actor_id", "post_id"), Index("ix_bookmarks_actor_id_id", "actor_id", "id"))

    id: Mapped[int] = id_column()  # pages GET /api/v1/bookmarks
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
