"""OAuth 2 applications, authorization codes and access tokens (tokens and codes stored hashed)."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column


def token_digest(token: str) -> str:
    """Tokens and codes are random (>= 256 bits), so a plain SHA-256 is the right way to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


class Application(TimestampMixin, Base):
    __tablename__ = "oauth_applications"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret: Mapped[str] = mapped_column(String(64))
    redirect_uris: Mapped[str] = mapped_column(Text)  # newline-separated
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated


class AuthorizationCode(TimestampMixin, Base):
    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("oauth_applications.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    scopes: Mapped[str] = mapped_column(String(500))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime]
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class Token(TimestampMixin, Base):
    __tablename__ = "oauth_tokens"

    id: Mapped[int] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("oauth_applications.id", ondelete="CASCADE"),
                                                       index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[str] = mapped_column(String(500))
    revoked_at: Mapped[dt.datetime | None]
