"""The versions of an edited status (Mastodon's StatusEdit): the first is the original, then one per edit."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class StatusEdit(TimestampMixin, Base):
    __tablename__ = "status_edits"

    id: Mapped[int] = id_column()
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    content: Mapped[str] = mapped_column(Text, default="")
    spoiler_text: Mapped[str] = mapped_column(Text, default="")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    media_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # the descriptions of those media as they were then (parallel to media_ids)
    media_descriptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    poll_options: Mapped[list[str] | None] = mapped_column(JSON)
