"""Notifications, written by whoever causes them (client API or inbox handlers) through `notify`."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
         "admin.sign_up", "admin.report")


class Notification(TimestampMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_recipient_id_id", "recipient_id", "id"),)

    id: Mapped[int] = id_column()
    recipient_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    from_actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))  # admin.report


async def notify(session: AsyncSession, recipient_id: int, kind: str, from_actor_id: int,
                 post_id: int | None = None) -> Notification | None:
    """Add a notification unless it would notify someone of their own act or repeat an existing one."""
    if recipient_id == from_actor_id and kind not in ("poll", "update"):
        return None
    existing = await session.scalar(
        select(Notification.id).where(
            Notification.recipient_id == recipient_id, Notification.kind == kind,
            Notification.from_actor_id == from_actor_id, Notification.post_id == post_id)
    )
    if existing is not None:
        return None
    notification = Notification(recipient_id=recipient_id, kind=kind, from_actor_id=from_actor_id,
                                post_id=post_id)
    session.add(notification)
    return notification
