"""Polls attached to statuses (a commune consults its residents) and the votes cast in them.

`options` is the list of option titles; `votes` one row per (voter, chosen option). Counts of our own
polls are computed from the votes when rendered (one grouped query per page). A poll received from a
partner (a `Question`) keeps the counts its origin announces in `remote_counts` (one per option) and
`remote_voters`; the votes of our residents in it are rows too (for `voted`/`own_votes`) and are added
to those counts when cast, until the origin's next Update{Question} brings the real figures. `closed_at` is set once the end has been
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
    remote_counts: Mapped[list[int] | None] = mapped_column(JSON)  # None for our own polls
    remote_voters: Mapped[int | None] = mapped_column(Integer)

    @property
    def remote(self) -> bool:
        return self.remote_counts is not None

    def count_local_vote(self, choices: list[int]) -> None:
        """Add a resident's vote in a remote poll to the counts announced by its origin."""
        if self.remote_counts is None:
            return
        counts = list(self.remote_counts)
        for choice in choices:
            counts[choice] += 1
        self.remote_counts = counts  # a new list, so that the JSON column is seen as changed
        if self.remote_voters is not None:
            self.remote_voters += 1


class PollVote(TimestampMixin, Base):
    __tablename__ = "poll_votes"
    __table_args__ = (UniqueConstraint("poll_id", "actor_id", "choice"),)

    id: Mapped[int] = id_column()
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    choice: Mapped[int] = mapped_column(Integer)
