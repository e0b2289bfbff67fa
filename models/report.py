"""Reports: a resident tells the moderators that an account (and some of its statuses) breaks a rule.

`status_ids` are posts of the reported account the reporter could see when reporting; `rule_ids` are
ids of the house rules (`server.api.instance.HOUSE_RULES`, "1".."5").
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

CATEGORIES = ("spam", "legal", "violation", "other")


class Report(TimestampMixin, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_target_id_id", "target_id", "id"),)

    id: Mapped[int] = id_column()
    reporter_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(12), default="other")
    comment: Mapped[str] = mapped_column(Text, default="")
    status_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    rule_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    action_taken: Mapped[bool] = mapped_column(Boolean, default=False)
