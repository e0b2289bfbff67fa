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
import io
import logging
import math
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blurhash
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
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

# Pillow refuses to open anything bigger than twice this (DecompressionBombError) and warns above it;
# `process_image` refuses above it itself, before decoding.
Image.MAX_IMAGE_PIXELS = MAX_MATRIX

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


def process_image(data: bytes, *, max_pixels: int = MAX_STORED_PIXELS,
                  preview_box: tuple[int, int] = PREVIEW_BOX,
                  crop: tuple[int, int] | None = None) -> ProcessedImage:
    """Check, orient, strip, resize and re-encode an uploaded image; raises MediaError if refused.

    `crop` (width, height) centre-crops to exactly that size instead of scaling to `max_pixels`
    (avatars 400x400 and headers 1500x500, as Mastodon).
    """
    if not data:
        raise MediaError("File is empty")
    if len(data) > MAX_FILE_BYTES:
        raise MediaError("File is larger than 16 MB")
    image, fmt = _open_checked(data)
    if fmt == "JPEG" and crop is None:
        _draft_jpeg(image, max_pixels)
    image = _decode(image)  # (no close(): with Pillow 13 copies may share the decoded core)
    try:
        return _convert(image, fmt, max_pixels, preview_box, crop)
    except MemoryError:
        raise MediaError("Image is too large to process") from None
    except Exception:  # an odd mode or encoder failure: refused, and logged for us to look at
        log.exception("media: could not convert a %s image of mode %s", fmt, image.mode)
        raise MediaError("File could not be processed as an image") from None


def _convert(image: Image.Image, fmt: str, max_pixels: int, preview_box: tuple[int, int],
             crop: tuple[int, int] | None) -> ProcessedImage:
    """Colours, size, re-encoding, preview and blurhash of a decoded, oriented image."""
    icc = image.info.pop("icc_profile", None)
    image = _to_srgb(_normalise_mode(image), icc)
    if crop is not None:
        image = ImageOps.fit(image, crop, Image.Resampling.LANCZOS)
    else:
        image = _fit_pixels(image, max_pixels)
    original_fmt = fmt  # each format is kept: JPEG has no alpha, PNG, WebP and GIF keep theirs
    original = _encode(image, original_fmt)
    preview_image = image.copy()
    preview_image.thumbnail(preview_box, Image.Resampling.LANCZOS)
    preview_fmt = "WEBP" if _has_alpha(preview_image) else "JPEG"
    preview = _encode(preview_image, preview_fmt)
    return ProcessedImage(
        data=original, content_type=FORMATS[original_fmt][0], extension=FORMATS[original_fmt][1],
        width=image.width, height=image.height,
        preview_data=preview, preview_content_type=FORMATS[preview_fmt][0],
        preview_extension=FORMATS[preview_fmt][1],
        preview_width=preview_image.width, preview_height=preview_image.height,
        blurhash=compute_blurhash(preview_image),
    )


def _open_checked(data: bytes) -> tuple[Image.Image, str]:
    """Open (headers only) with the four accepted decoders; refuse bombs before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError:
        raise MediaError("Image is too large (more than 33177600 pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise MediaError("File is not a supported image (JPEG, PNG, WebP or GIF)") from None
    fmt = image.format or ""
    if fmt == "MPO":  # phones' multi-picture JPEGs: the first picture is an ordinary JPEG
        fmt = "JPEG"
    if fmt not in FORMATS:
        image.close()
        raise MediaError("File is not a supported image (JPEG, PNG, WebP or GIF)")
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise MediaError("Image has no pixels")
    if width * height > MAX_MATRIX:
        image.close()
        raise MediaError("Image is too large (more than 33177600 pixels)")
    return image, fmt


def _draft_jpeg(image: Image.Image, max_pixels: int) -> None:
    """Let libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale when that still leaves enough pixels."""
    width, height = image.size
    if width * height <= max_pixels:
        return
    scale = math.sqrt(max_pixels / (width * height))
    try:
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    except Exception:  # draft is only an optimisation
        pass


def _decode(image: Image.Image) -> Image.Image:
    """Decode the first frame and apply the EXIF orientation; any decoder failure is a MediaError."""
    try:
        image.seek(0)
        image.load()
        frame = _oriented(image)
        if frame.width * frame.height > MAX_MATRIX:
            raise MediaError("Image is too large (more than 33177600 pixels)")
        # Keep only what decoding the pixels needs; everything else (exif, xmp, comments) goes.
        frame.info = {k: image.info[k] for k in ("icc_profile", "transparency") if k in image.info}
        return frame
    except MediaError:
        raise
    except Image.DecompressionBombError:
        raise MediaError("Image is too large (more than 33177600 pixels)") from None
    except MemoryError:
        raise MediaError("Image is too large to process") from None
    except Exception:  # Pillow raises many kinds on broken files (OSError, SyntaxError, struct.error…)
        raise MediaError("File could not be read as an image (truncated or corrupt)") from None


def _oriented(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; an unreadable EXIF block is ignored."""
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:
        return image.copy()
    return oriented if oriented is not None else image.copy()


_SRGB = ImageCms.createProfile("sRGB")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the embedded colour profile to sRGB (the files we write carry no profile)."""
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=image.mode)
    except Exception:  # a broken profile: keep the pixels as they are
        return image
    if converted is None:
        return image
    converted.info = {}
    return converted


def _has_alpha(image: Image.Image) -> bool:
    """Whether some pixel is not fully opaque (an alpha band that is all 255 does not count)."""
    if image.mode not in ("RGBA", "LA", "PA"):
        return False
    low, _high = image.getchannel(image.mode[-1]).getextrema()
    return bool(low < 255)  # type: ignore[operator]


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is transparent (palette, grey, CMYK and 16-bit images included)."""
    if image.mode == "P" or (image.mode in ("RGB", "L") and "transparency" in image.info):
        image = image.convert("RGBA")  # palette and colour-key (tRNS) transparency become alpha
    elif image.mode.startswith("I") or image.mode == "F":
        image = image.convert("RGB")
    if image.mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        return image if _has_alpha(image) else image.convert("RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """Scale down, keeping the ratio, so that width x height is at most `max_pixels` (as Mastodon)."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image, fmt: str) -> bytes:
    """Re-encode the pixels alone: no EXIF, XMP, ICC or comment is written."""
    out = io.BytesIO()
    clean = image.copy()
    clean.info = {}
    if fmt == "JPEG":
        clean.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    elif fmt == "PNG":
        clean.save(out, "PNG", optimize=False, compress_level=6)
    elif fmt == "WEBP":
        clean.save(out, "WEBP", quality=JPEG_QUALITY, method=4)
    else:
        clean.save(out, "GIF", optimize=False)
    return out.getvalue()


def compute_blurhash(image: Image.Image) -> str:
    """The blurhash (4x3 components) of a small copy of the image, transparency shown over white."""
    small = image.copy()
    small.thumbnail((32, 32), Image.Resampling.BOX)
    if small.mode == "RGBA":
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A"))
        small = background
    small = small.convert("RGB")
    pixels = list(small.getdata())
    rows = [pixels[y * small.width:(y + 1) * small.width] for y in range(small.height)]
    return str(blurhash.encode(rows, *BLURHASH_COMPONENTS))


# --- storage ---------------------------------------------------------------------------------------


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
