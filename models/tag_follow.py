"""Hashtags a resident follows (their posts come to the home timeline) and features on their profile.

Both store the tag's canonical form (`models.categories.canonical`): following `#zoekertje` follows the
`annonce` category, so `#annonce`, `#tekoop`... posts arrive too. A featured tag keeps the spelling the
resident chose for display (`display_name`).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class TagFollow(TimestampMixin, Base):
    __tablename__ = "tag_follows"
    __table_args__ = (UniqueConstraint("actor_id", "name"), Index("ix_tag_follows_name", "name"))

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))  # canonical


class FeaturedTag(TimestampMixin, Base):
    __tablename__ = "featured_tags"
    __table_args__ = (UniqueConstraint("actor_id", "name"),)

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))  # canonical
    display_name: Mapped[str] = mapped_column(String(100))  # as the resident wrote it
