"""Read markers: where a resident stopped reading each timeline, shared between their apps."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

TIMELINES = ("home", "notifications")


class Marker(Base):
    __tablename__ = "markers"

    owner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)
    timeline: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_read_id: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
