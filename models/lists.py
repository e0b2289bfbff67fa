"""Lists: a resident's own groupings of accounts they follow, each with a timeline of its own.

`replies_policy` says which replies the list timeline shows (Mastodon's values): `followed` (replies to
anyone the owner follows), `list` (replies to members of the list), `none` (no replies to others).
An `exclusive` list takes its members' posts out of the owner's home timeline.
"""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

REPLIES_POLICIES = ("followed", "list", "none")


class UserList(TimestampMixin, Base):
    __tablename__ = "lists"
    __table_args__ = (Index("ix_lists_owner_id_id", "owner_id", "id"),)

    id: Mapped[int] = id_column()
    owner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(100))
    replies_policy: Mapped[str] = mapped_column(String(10), default="list")
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)


class ListMember(Base):
    __tablename__ = "list_members"

    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
