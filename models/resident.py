"""Residents: the login side of a local Person actor (one-to-one)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin


class Resident(TimestampMixin, Base):
    __tablename__ = "residents"

    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(200))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    default_visibility: Mapped[str] = mapped_column(String(10), default="public")
    default_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    default_language: Mapped[str | None] = mapped_column(String(8))
    last_login_at: Mapped[dt.datetime | None]
