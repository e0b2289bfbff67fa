"""Remembered deletions: a Delete that arrives before its Create keeps the Create from resurrecting."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin


class Tombstone(TimestampMixin, Base):
    __tablename__ = "tombstones"

    uri: Mapped[str] = mapped_column(String(512), primary_key=True)
