"""Conversations: one row per (direct-message thread, participant), as Mastodon's AccountConversation.

Updated when a direct post is created (`services.posting`): the row of each participant gets the new
`last_post_id`, the other participants, and `unread` (except for the author). `hidden` is set by
DELETE /api/v1/conversations/:id and cleared by the next message.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("thread_id", "actor_id"),
                      Index("ix_conversations_actor_id_last_post_id", "actor_id", "last_post_id"))

    id: Mapped[int] = id_column()
    thread_id: Mapped[int]
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    participant_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # the others, sorted
    last_post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    unread: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
