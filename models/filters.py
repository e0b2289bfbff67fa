"""Filters (Mastodon's v2 model): a titled set of keywords and statuses, applied in some contexts.

`action` is `warn` (the status is shown behind a warning naming the filter) or `hide` (it is removed).
A v1 filter is a v2 filter with exactly one keyword.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

CONTEXTS = ("home", "notifications", "public", "thread", "account")
ACTIONS = ("warn", "hide")


class Filter(TimestampMixin, Base):
    __tablename__ = "filters"
    __table_args__ = (Index("ix_filters_owner_id_id", "owner_id", "id"),)

    id: Mapped[int] = id_column()
    owner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    contexts: Mapped[list[str]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(8), default="warn")
    expires_at: Mapped[dt.datetime | None]


class FilterKeyword(TimestampMixin, Base):
    __tablename__ = "filter_keywords"

    id: Mapped[int] = id_column()
    filter_id: Mapped[int] = mapped_column(ForeignKey("filters.id", ondelete="CASCADE"), index=True)
    keyword: Mapped[str] = mapped_column(String(200))
    whole_word: Mapped[bool] = mapped_column(Boolean, default=True)


class FilterStatus(TimestampMixin, Base):
    __tablename__ = "filter_statuses"
    __table_args__ = (UniqueConstraint("filter_id", "post_id"),)

    id: Mapped[int] = id_column()
    filter_id: Mapped[int] = mapped_column(ForeignKey("filters.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
