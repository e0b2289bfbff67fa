"""Actors, local or remote: residents (Person), villages (Group), the instance actor (Application)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, bindparam, func, select, type_coerce
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column, utcnow
from .db import fast

PERSON = "Person"
GROUP = "Group"
APPLICATION = "Application"
SERVICE = "Service"

ROLES = ("official", "elected", "moderator", "admin")


class Actor(TimestampMixin, Base):
    """Anything that can post, follow or be followed. `domain` is "" for our own actors."""

    __tablename__ = "actors"
    __table_args__ = (Index("ix_actors_username_domain", func.lower("username"), "domain", unique=True),)

    id: Mapped[int] = id_column()
    username: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(16), default=PERSON)
    uri: Mapped[str] = mapped_column(String(512), unique=True)
    url: Mapped[str | None] = mapped_column(String(512))
    inbox_uri: Mapped[str | None] = mapped_column(String(512))
    shared_inbox_uri: Mapped[str | None] = mapped_column(String(512))
    outbox_uri: Mapped[str | None] = mapped_column(String(512))
    followers_uri: Mapped[str | None] = mapped_column(String(512))

    display_name: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")  # sanitized HTML
    note_source: Mapped[str] = mapped_column(Text, default="")  # what the resident typed
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    header_url: Mapped[str | None] = mapped_column(String(512))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True)
    bot: Mapped[bool] = mapped_column(Boolean, default=False)

    # Residents: their home village. Villages: themselves. Remote actors: None.
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    suspended_at: Mapped[dt.datetime | None]

    public_key_pem: Mapped[str | None] = mapped_column(Text)
    private_key_pem: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(512), index=True)
    # FEP-8b32 object integrity proofs (local actors): Ed25519 private PEM and public Multikey.
    ed25519_private_pem: Mapped[str | None] = mapped_column(Text)
    ed25519_public_multikey: Mapped[str | None] = mapped_column(String(100))

    followers_count: Mapped[int] = mapped_column(Integer, default=0)
    following_count: Mapped[int] = mapped_column(Integer, default=0)
    statuses_count: Mapped[int] = mapped_column(Integer, default=0)
    last_status_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    fetched_at: Mapped[dt.datetime | None]

    @property
    def local(self) -> bool:
        return self.domain == ""

    @property
    def is_group(self) -> bool:
        return self.kind == GROUP

    def acct(self) -> str:
        return self.username if self.local else f"{self.username}@{self.domain}"


# An actor's row by its uri, for `db.load_fast`, built once (building a statement costs more than
# running this one).
ACTOR_ROW_BY_URI = fast(select(*Actor.__table__.c).where(Actor.uri == bindparam("uri")))

# What an Account entity needs (not the keys, not the profile source): rows of these columns render
# like Actor objects, without the ORM's cost of building objects nobody changes (`server/api/to_api.py`).
ACCOUNT_COLUMNS = (Actor.id, Actor.username, Actor.domain, Actor.kind, Actor.uri, Actor.url, Actor.display_name,
                   Actor.note, Actor.fields, Actor.avatar_url, Actor.header_url, Actor.locked, Actor.discoverable,
                   Actor.role, Actor.followers_count, Actor.following_count, Actor.statuses_count,
                   Actor.last_status_at, Actor.created_at)
# An actor row's version: its `updated_at`, which every change of the row sets (`onupdate`, and the
# counters' fast updates set it too: models/counters.py), as the database returns it (no conversion).
ACCOUNT_VERSION = type_coerce(Actor.updated_at, String).label("version")
