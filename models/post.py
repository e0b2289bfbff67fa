"""Posts (statuses and boosts), their mentions and hashtags.

A boost is a Post with `reblog_of_id` set; a village's Announce of a resident's post is such a boost
authored by the village's Group actor. Every row carries the audience of the post it shows
(`visibility`, `audience_id`, `origin_author_id`), copied onto boosts, so that one visibility rule
(`models.audience`) decides for originals and boosts alike and a boost never widens an audience.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, cast, literal, null, select
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, TimestampMixin, id_column

PUBLIC = "public"
UNLISTED = "unlisted"
PRIVATE = "private"
DIRECT = "direct"
VISIBILITIES = (PUBLIC, UNLISTED, PRIVATE, DIRECT)


class Post(TimestampMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_author_id_id", "author_id", "id"),
        Index("ix_posts_public_id", "local", "visibility", "reblog", "id"),
        Index("ix_posts_audience_id_id", "audience_id", "id"),
    )

    id: Mapped[int] = id_column()
    uri: Mapped[str] = mapped_column(String(512), unique=True)
    url: Mapped[str | None] = mapped_column(String(512))
    author_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"))
    local: Mapped[bool] = mapped_column(Boolean)

    visibility: Mapped[str] = mapped_column(String(10))
    # The village (Group actor) whose audience this post belongs to; None for private/direct posts
    # addressed only to followers or mentions.
    audience_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id"))
    # The author of the original post (equal to author_id unless this row is a boost).
    origin_author_id: Mapped[int] = mapped_column(ForeignKey("actors.id"), index=True)

    reblog: Mapped[bool] = mapped_column(Boolean, default=False)
    reblog_of_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), index=True)
    in_reply_to_account_id: Mapped[int | None] = mapped_column(ForeignKey("actors.id", ondelete="SET NULL"))
    in_reply_to_uri: Mapped[str | None] = mapped_column(String(512))
    thread_id: Mapped[int | None] = mapped_column(index=True)  # id of the thread's first post

    content: Mapped[str] = mapped_column(Text, default="")  # sanitized HTML
    source: Mapped[str] = mapped_column(Text, default="")  # what the author typed (local posts)
    spoiler_text: Mapped[str] = mapped_column(Text, default="")
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("oauth_applications.id", ondelete="SET NULL"))
    edited_at: Mapped[dt.datetime | None]

    replies_count: Mapped[int] = mapped_column(Integer, default=0)
    reblogs_count: Mapped[int] = mapped_column(Integer, default=0)
    favourites_count: Mapped[int] = mapped_column(Integer, default=0)


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (Index("ix_mentions_actor_id_post_id", "actor_id", "post_id"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), primary_key=True)


class PostTag(Base):
    """A hashtag on a post: `name` as written (lower-cased), `canonical` its category if it is a synonym."""

    __tablename__ = "post_tags"
    __table_args__ = (Index("ix_post_tags_canonical_post_id", "canonical", "post_id"),)

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    canonical: Mapped[str] = mapped_column(String(100))


def relation_parts(ids: Any) -> list[Any]:
    """SELECTs, to UNION ALL, of (kind, post id, actor id, name) rows for the posts whose id is in
    `ids` (an expanding bind parameter): `m` a mention (its actor), `t` a hashtag (its name), `a` an
    attachment, `q` a poll. What rendering a post needs besides its row, in one round trip."""
    from .media import MediaAttachment
    from .poll import Poll

    no_id, no_text = cast(null(), BigInteger), cast(null(), String)
    return [
        select(literal("m"), Mention.post_id, Mention.actor_id, no_text).where(Mention.post_id.in_(ids)),
        select(literal("t"), PostTag.post_id, no_id, PostTag.name).where(PostTag.post_id.in_(ids)),
        select(literal("a"), MediaAttachment.post_id, no_id, no_text).where(MediaAttachment.post_id.in_(ids)),
        select(literal("q"), Poll.post_id, no_id, no_text).where(Poll.post_id.in_(ids)),
    ]
