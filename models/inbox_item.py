"""Received activities, stored after their signature is verified and processed by a worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column
from .queue import QueueMixin


class InboxItem(QueueMixin, TimestampMixin, Base):
    __tablename__ = "inbox_items"
    # Fedify-style idempotency: the same activity delivered twice (or to two of our inboxes through the
    # shared inbox) is one row.
    __table_args__ = (UniqueConstraint("activity_uri"), Index("ix_inbox_items_due", "state", "next_attempt_at"))

    id: Mapped[int] = id_column()
    activity_uri: Mapped[str] = mapped_column(String(512))
    signer_uri: Mapped[str] = mapped_column(String(512))  # the actor whose key signed the request
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
