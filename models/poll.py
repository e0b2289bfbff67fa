"""Polls attached to statuses (a commune consults its residents) and the votes cast in them.

`options` is the list of option titles; `votes` one row per (voter, chosen option). Counts are computed
from the votes when rendered (one grouped query per page). `closed_at` is set once the end has been
noticed and the author and voters notified (`server.services.polls.close_expired_polls`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class Poll(TimestampMixin, Base):
    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_expires_at_closed_at", "expires_at", "closed_at"),)

    id: Mapped[int] = id_column()
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_totals: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]


class PollVote(TimestampMixin, Base):
    __tablename__ = "poll_votes"
    __table_args__ = (UniqueConstraint("poll_id", "actor_id", "choice"),)

    id: Mapped[int] = id_column()
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    choice: Mapped[int] = mapped_column(Integer)
