"""The media of a remote note: one MediaAttachment row per usable attachment, linked to the post.

We do not download remote media (no copy, no thumbnail, no re-encoding): the row keeps the sanitised
remote URL (`from_ap.media_url`: http/https only, length-capped) and what apps need to lay it out,
and residents' apps load the file from its origin. Such rows have no file under the media path; their
`file_key` is random and only fills the unique column.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.ids import new_id
from voisinage.models.media import MediaAttachment
from voisinage.models.post import Post

from ..from_ap import ParsedMedia

_SAME = ("remote_url", "kind", "content_type", "description", "blurhash", "width", "height", "focus_x", "focus_y")


def remote_media_row(post: Post, media: ParsedMedia) -> MediaAttachment:
    """The row of one remote attachment of `post` (not yet added to a session)."""
    return MediaAttachment(
        id=new_id(), actor_id=post.author_id, post_id=post.id, kind=media.kind,
        file_key=f"remote-{secrets.token_hex(16)}", remote_url=media.url,
        content_type=media.content_type, preview_content_type=media.content_type,
        width=media.width, height=media.height, preview_width=media.width, preview_height=media.height,
        description=media.description, focus_x=media.focus[0], focus_y=media.focus[1],
        blurhash=media.blurhash, processed=True)


async def store_remote_media(session: AsyncSession, post: Post, media: Sequence[ParsedMedia]) -> None:
    """Attach the parsed media to a remote post, in their order."""
    session.add_all(remote_media_row(post, m) for m in media)
    await session.flush()


async def replace_remote_media(session: AsyncSession, post: Post, media: Sequence[ParsedMedia]) -> bool:
    """After an edit (Update{Note}): the post's media become `media`; True when anything changed."""
    current = list(await session.scalars(select(MediaAttachment).where(MediaAttachment.post_id == post.id)
                                          .order_by(MediaAttachment.id)))
    rows = [remote_media_row(post, m) for m in media]
    if [[getattr(r, k) for k in _SAME] for r in current] == [[getattr(r, k) for k in _SAME] for r in rows]:
        return False
    await session.execute(delete(MediaAttachment).where(MediaAttachment.post_id == post.id))
    session.add_all(rows)
    await session.flush()
    return True


async def delete_remote_media(session: AsyncSession, *, post_id: int | None = None,
                              actor_id: int | None = None) -> None:
    """Drop the media rows of a deleted remote post, or of every post of a deleted remote actor
    (they have no files; nothing else would ever remove the rows)."""
    if post_id is None and actor_id is None:
        return
    query = delete(MediaAttachment).where(MediaAttachment.remote_url.is_not(None))
    if post_id is not None:
        query = query.where(MediaAttachment.post_id == post_id)
    if actor_id is not None:
        query = query.where(MediaAttachment.actor_id == actor_id)
    await session.execute(query)
