"""Notifications, written by whoever causes them (client API or inbox handlers) through `notify`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column, utcnow
from .db import fast, insert_new
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


def _existing(post: Any) -> Any:
    return fast(select(Notification.id).where(
        Notification.recipient_id == bindparam("recipient"), Notification.kind == bindparam("kind"),
        Notification.from_actor_id == bindparam("sender"), post).limit(1))


# The same notification already there (built once: `post_id = NULL` would never match, hence two).
_EXISTING = _existing(Notification.post_id == bindparam("post"))
_EXISTING_WITHOUT_POST = _existing(Notification.post_id.is_(None))


async def notify(session: AsyncSession, recipient_id: int, kind: str, from_actor_id: int,
                 post_id: int | None = None) -> Notification | None:
    """Add a notification unless it would notify someone of their own act or repeat an existing one (a
    fast insert: the returned instance is not in the session)."""
    if recipient_id == from_actor_id and kind not in ("poll", "update"):
        return None
    statement, parameters = _EXISTING, {"recipient": recipient_id, "kind": kind, "sender": from_actor_id}
    if post_id is None:
        statement = _EXISTING_WITHOUT_POST
    else:
        parameters["post"] = post_id
    if (await session.execute(statement, parameters)).first() is not None:
        return None
    return await insert_new(session, Notification, id=new_id(), recipient_id=recipient_id, kind=kind,  # type: ignore[no-any-return]
                            from_actor_id=from_actor_id, post_id=post_id, created_at=utcnow())
