"""Remembered deletions: a Delete that arrives before its Create keeps the Create from resurrecting.

`deleter_uri` is the actor whose Delete left it: only that actor's own Create is dropped later.
`public` says one of our posts was public when deleted: only then may a partner learn it existed (410).
"""

from __future__ import annotations

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin


class Tombstone(TimestampMixin, Base):
    __tablename__ = "tombstones"

    uri: Mapped[str] = mapped_column(String(512), primary_key=True)
    deleter_uri: Mapped[str | None] = mapped_column(String(512), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
