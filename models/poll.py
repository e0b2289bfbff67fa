"""Polls attached to statuses (a commune consults its residents) and the votes cast in them.

`options` is the list of option titles; `votes` one row per (voter, chosen option). Counts of our own
polls are computed from the votes when rendered (one grouped query per page). A poll received from a
partner (a `Question`) keeps the counts its origin announces in `remote_counts` (one per option) and
`remote_voters`; the votes of our residents in it are rows too (for `voted`/`own_votes`) and are added
to those counts when cast, until the origin's next Update{Question} brings the real figures. `closed_at` is set once the end has been
noticed and the author and voters notified (`server.services.posting.close_expired_polls`). A partner's
poll without an end (Misskey, Pleroma) has no `expires_at`.

Partners learn the counts of our polls by Update{Question}, at most one per poll per `UPDATE_EVERY`
while votes come in: `federated_at` is when the last one went, `update_pending` says that votes were
counted since and the maintenance loop sends them (`server.services.maintenance`); the end always goes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

UPDATE_EVERY = dt.timedelta(seconds=60)

class Poll(TimestampMixin, Base):
    __tablename__ = "polls"
    __table_args__ = (Index("ix_polls_expires_at_closed_at", "expires_at", "closed_at"),)

    id: Mapped[int] = id_column()
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_totals: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None]  # None: a partner's poll that never ends
    closed_at: Mapped[dt.datetime | None]
    remote_counts: Mapped[list[int] | None] = mapped_column(JSON)  # None for our own polls
    remote_voters: Mapped[int | None] = mapped_column(Integer)
    federated_at: Mapped[dt.datetime | None]
    update_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)

    @property
    def remote(self) -> bool:
        return self.remote_counts is not None

    def ended(self, now: dt.datetime) -> bool:
        return self.closed_at is not None or (self.expires_at is not None and self.expires_at <= now)

    def update_due(self, now: dt.datetime) -> bool:
        """A vote was counted in our poll: True when partners should get its counts now (then noted as
        sent), False when one went less than `UPDATE_EVERY` ago (then left pending for maintenance)."""
        if self.federated_at is not None and now - self.federated_at < UPDATE_EVERY:
            self.update_pending = True
            return False
        self.federated(now)
        return True

    def federated(self, now: dt.datetime) -> None:
        """Note that partners were sent the current counts."""
        self.federated_at, self.update_pending = now, False

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
