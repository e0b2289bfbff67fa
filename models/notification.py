"""Notifications, written by whoever causes them (client API or inbox handlers) through `notify`."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column, utcnow
from .db import insert_new_unless, insert_unless, new_row_column
from .ids import new_id

TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
         "admin.sign_up", "admin.report")


class Notification(TimestampMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient_id_id", "recipient_id", "id"),
        # `notify`'s check for the same notification: by post first. With the recipient's index alone,
        # SQLite (without statistics) read every notification of the recipient for each check.
        Index("ix_notifications_post_id_recipient_id", "post_id", "recipient_id"),
    )

    id: Mapped[int] = id_column()
    recipient_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    from_actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))  # admin.report


@functools.cache
def _insert_unless_existing(with_post: bool) -> Any:
    """The notification, unless the same one is there already (one statement). Built at first use,
    once the foreign keys' columns have their types. Two: `post_id = NULL` would never match."""
    def new(name: str) -> Any:
        return new_row_column(Notification, name)

    same_post = Notification.post_id == new("post_id") if with_post else Notification.post_id.is_(None)
    existing = select(Notification.id).where(
        Notification.recipient_id == new("recipient_id"), Notification.kind == new("kind"),
        Notification.from_actor_id == new("from_actor_id"), same_post)
    return insert_unless(Notification, existing)


async def notify(session: AsyncSession, recipient_id: int, kind: str, from_actor_id: int,
                 post_id: int | None = None) -> Notification | None:
    """Add a notification unless it would notify someone of their own act or repeat an existing one (a
    fast insert: the returned instance is not in the session)."""
    if recipient_id == from_actor_id and kind not in ("poll", "update"):
        return None
    return await insert_new_unless(session, _insert_unless_existing(post_id is not None),  # type: ignore[no-any-return]
                                   Notification, id=new_id(), recipient_id=recipient_id, kind=kind,
                                   from_actor_id=from_actor_id, post_id=post_id, created_at=utcnow())
