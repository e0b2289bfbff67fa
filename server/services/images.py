"""Decoding, cleaning, resizing and re-encoding uploaded images with Pillow (`process_image`).

Imported by the first upload (services/media.py), so that a process that never receives one does not
load Pillow.
"""

from __future__ import annotations

import io
import math

import blurhash
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .media import (
    BLURHASH_COMPONENTS,
    FORMATS,
    JPEG_QUALITY,
    MAX_FILE_BYTES,
    MAX_MATRIX,
    MAX_STORED_PIXELS,
    PREVIEW_BOX,
    MediaError,
    ProcessedImage,
    log,
)

# Pillow refuses to open anything bigger than twice this (DecompressionBombError) and warns above it;
# `process_image` refuses above it itself, before decoding.
Image.MAX_IMAGE_PIXELS = MAX_MATRIX


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
