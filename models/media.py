"""Media attachments: images a resident uploads, then attaches to a post (Mastodon's MediaAttachment).

The files live under the configured media path at `<key[0:2]>/<key>/original.<ext>` and
`preview.<ext>`; `file_key` is 128 random bits, so the URLs cannot be guessed (apps load images without
a token). An upload stays unattached (`post_id` None) until a post takes it; unattached uploads older
than a day are removed by the orphan cleanup. Deleting a post detaches its media (SET NULL), as
Mastodon's "delete and redraft" reuses them; the cleanup removes them later if nothing takes them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

IMAGE = "image"
MAX_DESCRIPTION = 1500  # Mastodon's MediaAttachment::MAX_DESCRIPTION_LENGTH


class MediaAttachment(TimestampMixin, Base):
    __tablename__ = "media_attachments"
    __table_args__ = (
        Index("ix_media_attachments_post_id", "post_id"),
        Index("ix_media_attachments_actor_id_created_at", "actor_id", "created_at"),
    )

    id: Mapped[int] = id_column()
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default=IMAGE)
    file_key: Mapped[str] = mapped_column(String(64), unique=True)  # hex, >= 128 random bits

    content_type: Mapped[str] = mapped_column(String(64))  # of the stored original
    preview_content_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    preview_width: Mapped[int] = mapped_column(Integer, default=0)
    preview_height: Mapped[int] = mapped_column(Integer, default=0)
    file_size: Mapped[int] = mapped_column(Integer, default=0)  # bytes of the stored original

    description: Mapped[str] = mapped_column(Text, default="")  # alt text, at most MAX_DESCRIPTION
    focus_x: Mapped[float] = mapped_column(Float, default=0.0)  # -1 (left) .. 1 (right)
    focus_y: Mapped[float] = mapped_column(Float, default=0.0)  # -1 (bottom) .. 1 (top)
    blurhash: Mapped[str | None] = mapped_column(String(64))

    remote_url: Mapped[str | None] = mapped_column(String(512))  # for media fetched by federation
    processed: Mapped[bool] = mapped_column(Boolean, default=False)
