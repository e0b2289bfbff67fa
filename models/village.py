"""Villages (zones, quarters) of the commune, and the households that receive codes by post."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


class Village(TimestampMixin, Base):
    """A village of this instance. Its ActivityPub face is a local `Group` actor (`actor_id`)."""

    __tablename__ = "villages"

    id: Mapped[int] = id_column()
    slug: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(unique=True)  # the Group actor (no FK: actors refer to villages)


class Household(TimestampMixin, Base):
    """One postal household: its code (stored hashed) lets up to `max_uses` residents register."""

    __tablename__ = "households"

    id: Mapped[int] = id_column()
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[dt.datetime | None]
