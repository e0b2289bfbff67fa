"""/api/v1/media and /api/v2/media (uploads, alt text, focus) and the /media/... files themselves.

Uploads are read from the multipart stream with their own cap (16 MiB for the file, as Mastodon's
image_size_limit), not with `request.post()`, whose app-wide 1 MiB limit is for ordinary forms.
Images are processed in a worker thread before the answer, so both versions answer 200 with the
entity complete; GET answers 206 for a row that is not processed yet (none is, for now, but media
fetched by federation may be later).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy import select

from voisinage.models.db import read_session, write_session
from voisinage.models.media import MAX_DESCRIPTION, MediaAttachment

from ..auth import require_viewer
from ..errors import ApiError, json_response
from ..keys import SESSIONMAKER, SETTINGS
from ..services import media as media_service
from ..services.media import MAX_FILE_BYTES, MediaError
from .params import path_id, read_params

MAX_FIELD_BYTES = 16 * 1024  # a description of 1500 characters is at most 6 KB of UTF-8
MAX_PARTS = 16
MAX_BODY_BYTES = MAX_FILE_BYTES + 256 * 1024  # the file, the other fields and the multipart framing
CHUNK = 64 * 1024
PARALLEL_PROCESSING = 2  # images decoded at once per process (a 33 MP image needs ~130 MB)
FILE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _processing_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(PARALLEL_PROCESSING)
    return slots


@dataclass
class Upload:
    """What a media upload form carried: the file's bytes and the text fields."""

    file: bytes | None = None
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # every file part named in `file_names`


def media_root(request: web.Request) -> Path:
    return Path(request.app[SETTINGS].media.path)


def _too_large() -> ApiError:
    return ApiError(413, "File is too large (maximum is 16 MB)")


async def _read_part(part: BodyPartReader, cap: int, error: ApiError) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise error
        chunks.append(chunk)


async def read_upload(request: web.Request, file_names: tuple[str, ...] = ("file",)) -> Upload:
    """Stream the multipart body with our own caps: 413 over 16 MiB, 422 for a body that is no form.

    The parts named in `file_names` are kept as files (`upload.file` is the first of them)."""
    if request.content_type != "multipart/form-data":
        raise ApiError(422, "Validation failed: the file must be sent as multipart/form-data")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    upload = Upload(fields={k: v for k, v in request.query.items()})
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                return upload
            if not isinstance(part, BodyPartReader):
                raise ApiError(422, "Validation failed: nested multipart bodies are not accepted")
            if part.name in file_names:
                upload.files[part.name] = await _read_part(part, MAX_FILE_BYTES, _too_large())
                if part.name == file_names[0]:
                    upload.file = upload.files[part.name]
            elif part.filename is not None:  # `thumbnail` and any other file: read and forget
                await _read_part(part, MAX_FILE_BYTES, _too_large())
            else:
                raw = await _read_part(part, MAX_FIELD_BYTES,
                                       ApiError(422, f"Validation failed: {part.name} is too long"))
                upload.fields[part.name or ""] = raw.decode("utf-8", errors="replace")
    except (ValueError, AssertionError, RuntimeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The request body cannot be read: {exc}") from None
    raise ApiError(422, "Validation failed: too many form fields")


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, "Validation failed: description must be a string")
    if len(value) > MAX_DESCRIPTION:
        raise ApiError(422, f"Validation failed: description is too long (maximum is {MAX_DESCRIPTION} characters)")
    return value


def _focus(value: Any) -> tuple[float, float] | None:
    if value is None or value == "":
        return None
    try:
        return media_service.parse_focus(value)
    except MediaError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None


async def _process(data: bytes) -> media_service.ProcessedImage:
    async with _processing_slots():
        try:
            return await asyncio.to_thread(media_service.process_image, data)
        except MediaError as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None


async def _create(request: web.Request) -> MediaAttachment:
    """Read, check, process, store; the row is written only once both files are in place."""
    actor_id = require_viewer(request)
    upload = await read_upload(request)
    description = _description(upload.fields.get("description"))
    focus = _focus(upload.fields.get("focus")) or (0.0, 0.0)
    if not upload.file:
        raise ApiError(422, "Validation failed: File is missing or empty")
    processed = await _process(upload.file)
    root = media_root(request)
    key = media_service.new_file_key()
    await asyncio.to_thread(media_service.store_media, root, key, processed)
    try:
        async with write_session(request.app[SESSIONMAKER]) as session:
            row = media_service.new_media_row(actor_id, key, processed, description, focus)
            session.add(row)
    except BaseException:
        await asyncio.to_thread(media_service.delete_media_files, root, key)
        raise
    return row


def _render(request: web.Request, row: MediaAttachment, status: int = 200) -> web.Response:
    return json_response(media_service.media_to_api(row, request.app[SETTINGS].base_url), status=status)


async def create_media_v2(request: web.Request) -> web.Response:
    """POST /api/v2/media: processed at once, so 200 with `url` set (Mastodon may answer 202)."""
    return _render(request, await _create(request))


async def create_media_v1(request: web.Request) -> web.Response:
    """POST /api/v1/media (legacy, toot): always 200 with the processed entity."""
    return _render(request, await _create(request))


async def _own_unattached(session: Any, request: web.Request) -> MediaAttachment:
    """The caller's media named in the path, still unattached (Mastodon's rule for show and update)."""
    actor_id = require_viewer(request)
    row = await session.scalar(select(MediaAttachment).where(
        MediaAttachment.id == path_id(request), MediaAttachment.actor_id == actor_id,
        MediaAttachment.post_id.is_(None)))
    if row is None:
        raise ApiError(404, "Record not found")
    return row


def _status_of(row: MediaAttachment) -> int:
    return 200 if row.processed else 206


async def get_media(request: web.Request) -> web.Response:
    """GET /api/v1/media/:id: 200 when processed, 206 while processing; 404 for others' or attached."""
    async with read_session(request.app[SESSIONMAKER]) as session:
        row = await _own_unattached(session, request)
    return _render(request, row, _status_of(row))


async def update_media(request: web.Request) -> web.Response:
    """PUT /api/v1/media/:id: description and focus, until the media is attached to a post."""
    params = await read_params(request)
    description = _description(params.raw("description")) if "description" in params else None
    focus = _focus(params.raw("focus"))
    async with write_session(request.app[SESSIONMAKER]) as session:
        row = await _own_unattached(session, request)
        if description is not None:
            row.description = description
        if focus is not None:
            row.focus_x, row.focus_y = focus
    return _render(request, row, _status_of(row))


async def delete_media(request: web.Request) -> web.Response:
    """DELETE /api/v1/media/:id (Mastodon 4.4): only an unattached upload of the caller; 422 if attached."""
    actor_id = require_viewer(request)
    async with write_session(request.app[SESSIONMAKER]) as session:
        row = await session.scalar(select(MediaAttachment).where(
            MediaAttachment.id == path_id(request), MediaAttachment.actor_id == actor_id))
        if row is None:
            raise ApiError(404, "Record not found")
        if row.post_id is not None:
            raise ApiError(422, "Media attachment is currently used by a status")
        key = row.file_key
        await session.delete(row)
    await asyncio.to_thread(media_service.delete_media_files, media_root(request), key)
    return json_response({})


async def get_media_file(request: web.Request) -> web.StreamResponse:
    """GET /media/{prefix}/{key}/{name}: the stored file with its real type, never rendered as a page."""
    found = await asyncio.to_thread(
        media_service.media_file_path, media_root(request), request.match_info.get("prefix", ""),
        request.match_info.get("key", ""), request.match_info.get("name", ""))
    if found is None:
        raise web.HTTPNotFound(text="Not found")
    path, content_type = found
    headers = {**FILE_HEADERS, "Content-Type": content_type}
    return web.FileResponse(path, headers=headers)
