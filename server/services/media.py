"""Image uploads: check, clean, resize and store them; render them as Mastodon MediaAttachments.

`process_image` is pure and CPU-bound (run it with `asyncio.to_thread`). It trusts nothing the client
says: the type comes from the bytes (only JPEG, PNG, WebP and GIF decoders are tried), the dimensions
are checked before any pixel is decoded (image bombs), the EXIF orientation is applied and every piece
of metadata (EXIF with GPS, XMP, comments) is dropped by re-encoding the pixels. Colour profiles are
converted to sRGB. `store_media` writes the files atomically; `media_to_api` renders the entity.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.base import utcnow
from voisinage.models.media import MediaAttachment

MAX_FILE_BYTES = 16 * 1024 * 1024  # Mastodon's image_size_limit (16 MiB)
MAX_MATRIX = 33_177_600  # Mastodon's image_matrix_limit: the most pixels we accept to decode
MAX_STORED_PIXELS = 3840 * 2160  # Mastodon's IMAGE_LIMIT: larger images are scaled down to this many
PREVIEW_BOX = (640, 640)
BLURHASH_COMPONENTS = (4, 3)
JPEG_QUALITY = 85
ORPHAN_AGE = dt.timedelta(days=1)

log = logging.getLogger("voisinage.media")

FORMATS = {  # Pillow format -> (content type, extension)
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
EXTENSION_TYPES = {ext: ctype for ctype, ext in FORMATS.values()}
FILE_KEY = re.compile(r"^[0-9a-f]{32}$")
FILE_NAME = re.compile(r"^(original|preview)\.(jpg|png|webp|gif)$")


class MediaError(Exception):
    """The upload is not an image we accept (the API answers 422 with this message)."""


@dataclass(frozen=True)
class ProcessedImage:
    """A cleaned image and its preview, ready to store."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    preview_data: bytes
    preview_content_type: str
    preview_extension: str
    preview_width: int
    preview_height: int
    blurhash: str

    @property
    def file_size(self) -> int:
        return len(self.data)


# --- processing ----------------------------------------------------------------------------------


def process_image(data: bytes, **options: Any) -> ProcessedImage:
    """Check, clean, resize and re-encode an upload (services/images.py; Pillow is imported by the
    first upload, not at start-up)."""
    from .images import process_image as process

    return process(data, **options)


def new_file_key() -> str:
    """128 random bits as hex: the unguessable part of a media URL."""
    return secrets.token_hex(16)


def valid_file_key(key: str) -> bool:
    return bool(FILE_KEY.match(key))


def media_dir(media_root: Path, file_key: str) -> Path:
    if not valid_file_key(file_key):
        raise ValueError("malformed media file key")
    return Path(media_root) / file_key[:2] / file_key


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def store_media(media_root: Path, file_key: str, processed: ProcessedImage) -> None:
    """Write original.<ext> and preview.<ext> under <root>/<key[0:2]>/<key>/, each atomically, 0644."""
    folder = media_dir(media_root, file_key)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _write_atomic(folder / f"original.{processed.extension}", processed.data)
        _write_atomic(folder / f"preview.{processed.preview_extension}", processed.preview_data)
    except BaseException:
        delete_media_files(media_root, file_key)
        raise


def delete_media_files(media_root: Path, file_key: str) -> None:
    """Remove a media's folder and files (nothing happens if they are already gone)."""
    folder = media_dir(media_root, file_key)
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            child.unlink()
    with contextlib.suppress(FileNotFoundError):
        folder.rmdir()
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # the <key[0:2]> folder, when it is now empty (else OSError)


def media_file_path(media_root: Path, prefix: str, file_key: str, name: str) -> tuple[Path, str] | None:
    """The file a `/media/<prefix>/<key>/<name>` URL names and its type, or None if it names nothing.

    Every part is checked against the exact shape we write, so no `..`, slash or odd name gets through.
    """
    if not valid_file_key(file_key) or prefix != file_key[:2]:
        return None
    match = FILE_NAME.match(name)
    if match is None:
        return None
    path = media_dir(media_root, file_key) / name
    if not path.is_file():
        return None
    return path, EXTENSION_TYPES[match.group(2)]


# --- rows and entities -------------------------------------------------------------------------------


def new_media_row(actor_id: int, file_key: str, processed: ProcessedImage, description: str = "",
                  focus: tuple[float, float] = (0.0, 0.0)) -> MediaAttachment:
    """The MediaAttachment row for a processed local upload (not yet added to a session)."""
    return MediaAttachment(
        actor_id=actor_id, file_key=file_key, kind="image",
        content_type=processed.content_type, preview_content_type=processed.preview_content_type,
        width=processed.width, height=processed.height,
        preview_width=processed.preview_width, preview_height=processed.preview_height,
        file_size=processed.file_size, description=description, focus_x=focus[0], focus_y=focus[1],
        blurhash=processed.blurhash, processed=True,
    )


def _extension(content_type: str) -> str:
    for ctype, ext in FORMATS.values():
        if ctype == content_type:
            return ext
    return "bin"


def media_url(media: MediaAttachment, base_url: str) -> str:
    key = media.file_key
    return f"{base_url}/media/{key[:2]}/{key}/original.{_extension(media.content_type)}"


def preview_url(media: MediaAttachment, base_url: str) -> str:
    key = media.file_key
    return f"{base_url}/media/{key[:2]}/{key}/preview.{_extension(media.preview_content_type)}"


def _size_meta(width: int, height: int) -> dict[str, Any]:
    return {"width": width, "height": height, "size": f"{width}x{height}",
            "aspect": width / height if height else 0.0}


def media_to_api(media: MediaAttachment, base_url: str) -> dict[str, Any]:
    """Mastodon's MediaAttachment entity; `url` is null while the image is not processed yet."""
    ready = media.processed
    meta: dict[str, Any] = {"focus": {"x": media.focus_x, "y": media.focus_y}}
    if ready:
        meta["original"] = _size_meta(media.width, media.height)
        meta["small"] = _size_meta(media.preview_width, media.preview_height)
    return {
        "id": str(media.id),
        "type": media.kind,
        "url": media_url(media, base_url) if ready else None,
        "preview_url": preview_url(media, base_url) if ready else None,
        "remote_url": media.remote_url,
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": media.description or None,
        "blurhash": media.blurhash,
    }


def parse_focus(value: Any) -> tuple[float, float]:
    """`"x,y"` (or {"x":..,"y":..}) with both in -1..1, as Mastodon's focus parameter; else MediaError."""
    if isinstance(value, dict):
        parts: Sequence[Any] = [value.get("x"), value.get("y")]
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        raise MediaError("focus must be two numbers x,y between -1 and 1")
    if len(parts) != 2:
        raise MediaError("focus must be two numbers x,y between -1 and 1")
    try:
        x, y = (float(p) for p in parts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MediaError("focus must be two numbers x,y between -1 and 1") from None
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):  # also refuses nan
        raise MediaError("focus must be two numbers x,y between -1 and 1")
    return x, y


# --- for statuses: attaching and loading ----------------------------------------------------------------


async def get_attachable_media(session: AsyncSession, actor_id: int, media_ids: Sequence[int],
                               limit: int = 4) -> list[MediaAttachment]:
    """The author's unattached, processed uploads named by `media_ids`, in that order; MediaError if any
    is missing, someone else's, already attached or still processing, or if there are more than `limit`."""
    unique = list(dict.fromkeys(media_ids))
    if len(unique) > limit:
        raise MediaError(f"Too many media attachments (maximum is {limit})")
    if not unique:
        return []
    rows = {m.id: m for m in await session.scalars(
        select(MediaAttachment).where(MediaAttachment.id.in_(unique), MediaAttachment.actor_id == actor_id,
                                      MediaAttachment.post_id.is_(None)))}
    missing = [i for i in unique if i not in rows]
    if missing:
        raise MediaError("media_ids names media that cannot be attached")
    if not all(rows[i].processed for i in unique):
        raise MediaError("Media is still being processed")
    return [rows[i] for i in unique]


def attach_media(media: Sequence[MediaAttachment], post_id: int) -> None:
    """Mark loaded rows as attached to a post (inside the caller's write transaction)."""
    for row in media:
        row.post_id = post_id


async def load_media_for_posts(session: AsyncSession, post_ids: Sequence[int]) -> dict[int, list[MediaAttachment]]:
    """All media of these posts in one query, by post id, in upload order (for batched status rendering)."""
    out: dict[int, list[MediaAttachment]] = {}
    if not post_ids:
        return out
    rows = await session.scalars(
        select(MediaAttachment).where(MediaAttachment.post_id.in_(list(set(post_ids))))
        .order_by(MediaAttachment.post_id, MediaAttachment.id))
    for row in rows:
        out.setdefault(row.post_id, []).append(row)  # type: ignore[arg-type]
    return out


async def cleanup_orphans(session: AsyncSession, media_root: Path, older_than: dt.timedelta = ORPHAN_AGE,
                          *, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Delete unattached uploads created more than `older_than` ago (rows and files); returns how many.

    Meant for a periodic worker: the caller's write transaction commits the deletions. Files are
    removed after the rows are deleted and flushed; a file left behind by a failed commit is harmless
    (its URL is unknown to anyone and no row points to it).
    """
    cutoff = (now or utcnow()) - older_than
    rows = list(await session.execute(
        select(MediaAttachment.id, MediaAttachment.file_key)
        .where(MediaAttachment.post_id.is_(None), MediaAttachment.remote_url.is_(None),
               MediaAttachment.created_at < cutoff)
        .order_by(MediaAttachment.id).limit(batch)))
    if not rows:
        return 0
    await session.execute(delete(MediaAttachment).where(MediaAttachment.id.in_([r.id for r in rows])))
    await session.flush()
    for row in rows:
        if valid_file_key(row.file_key):
            delete_media_files(media_root, row.file_key)
    return len(rows)
