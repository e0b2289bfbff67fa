"""Media uploads as Mastodon apps do them: /api/v1/media, /api/v2/media, /media/... files, orphans.

Every image is built here with Pillow. Accepted uploads are checked through the served file itself
(reopened with Pillow: no EXIF, no GPS, orientation applied); refused ones leave no row and no file.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from PIL import ExifTags, Image
from sqlalchemy import update
from yarl import URL

from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.media import MediaAttachment
from voisinage.models.post import Post
from voisinage.server.services import media as media_service

# The route lines the lead adds to server/routes.py; until then this module's `client` adds them.


# --- images ------------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def two_colour(size: tuple[int, int] = (300, 200), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: tells which way the image was turned."""
    image = Image.new(mode, size, (0, 0, 255) if mode == "RGB" else (0, 0, 255, 255))
    image.paste((255, 0, 0) if mode == "RGB" else (255, 0, 0, 255), (0, 0, size[0] // 2, size[1]))
    return image


def jpeg_with_exif() -> bytes:
    """A 300x200 JPEG whose EXIF says "rotate 90° clockwise" (6), with GPS, a maker, XMP and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (50.0, 51.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 21.0, 36.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">XMPSECRET</x:xmpmeta>'
    data = encode(two_colour(), "JPEG", exif=exif, xmp=xmp, comment=b"COMMENTSECRET", quality=95)
    check = Image.open(io.BytesIO(data))  # the fixture really carries what the test removes
    assert check.getexif()[ExifTags.Base.Orientation] == 6
    assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"XMPSECRET" in data and b"COMMENTSECRET" in data
    return data


def png_with_alpha() -> bytes:
    image = Image.new("RGBA", (120, 80), (0, 128, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 60, 80))
    return encode(image, "PNG")


def webp_image() -> bytes:
    return encode(two_colour((200, 100)), "WEBP", quality=90)


def gif_image() -> bytes:
    frames = [Image.new("P", (64, 48), 0), Image.new("P", (64, 48), 1)]
    for index, frame in enumerate(frames):
        frame.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
        frame.paste(index, (0, 0, 64, 48))
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def mpo_image() -> bytes:
    """A phone's multi-picture JPEG (MPO): two pictures, the first one is shown."""
    first, second = two_colour((90, 60)), Image.new("RGB", (90, 60), (0, 255, 0))
    return encode(first, "MPO", save_all=True, append_images=[second])


def png_bomb(size: tuple[int, int] = (10000, 10000)) -> bytes:
    """A huge, all-black bilevel PNG: a few kilobytes that would decode to 100 million pixels."""
    return encode(Image.new("1", size, 0), "PNG")


def truncated_jpeg() -> bytes:
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (400, 300), bytes(rng.getrandbits(8) for _ in range(400 * 300 * 3)))
    data = encode(noise, "JPEG", quality=95)
    return data[: len(data) // 2]


def form(data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg",
         **fields: str) -> FormData:
    body = FormData()
    for name, value in fields.items():
        body.add_field(name, value)
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


# --- helpers -----------------------------------------------------------------------------------------


def stored_files(rig: Any) -> list[Path]:
    root = Path(rig.settings.media.path)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def fetch(rig: Any, url: str) -> tuple[int, Any, bytes]:
    assert url.startswith(rig.base_url + "/media/")
    async with rig.client.get(url[len(rig.base_url):]) as response:
        return response.status, response.headers, await response.read()


async def upload(rig: Any, who: str, data: bytes, version: str = "v2", **kw: Any) -> tuple[int, Any]:
    return await rig.api(who).post(f"/api/{version}/media", data=form(data, **kw))


async def assert_nothing_stored(rig: Any) -> None:
    assert await rig.count(MediaAttachment) == 0
    assert stored_files(rig) == []


async def make_post(rig: Any, who: str) -> int:
    async with write_session(rig.sessionmaker) as session:
        post = Post(uri=f"{rig.base_url}/test/{os.urandom(8).hex()}", author_id=rig[who].actor_id, local=True,
                    visibility="public", origin_author_id=rig[who].actor_id, content="<p>x</p>")
        session.add(post)
        await session.flush()
        return post.id


# --- accepted uploads ------------------------------------------------------------------------------


async def check_served(rig: Any, entity: dict[str, Any], content_type: str) -> Image.Image:
    """The original and preview are served with their type and safe headers; returns the original."""
    status, headers, body = await fetch(rig, entity["url"])
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in headers["Cache-Control"] and "public" in headers["Cache-Control"]
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.size == (entity["meta"]["original"]["width"], entity["meta"]["original"]["height"])
    assert len(body) == os.path.getsize(stored_files_for(rig, entity["url"]))
    p_status, p_headers, p_body = await fetch(rig, entity["preview_url"])
    assert p_status == 200 and p_headers["Content-Type"] in ("image/jpeg", "image/webp")
    preview = Image.open(io.BytesIO(p_body))
    assert preview.size == (entity["meta"]["small"]["width"], entity["meta"]["small"]["height"])
    assert max(preview.size) <= 640
    return image


def stored_files_for(rig: Any, url: str) -> Path:
    return Path(rig.settings.media.path) / url.split("/media/", 1)[1]


async def test_jpeg_is_oriented_and_loses_exif_gps_xmp_and_comment(rig: Any) -> None:
    status, entity = await upload(rig, "alder", jpeg_with_exif(), description="Le lavoir", focus="0.5,-0.25")
    assert status == 200, entity
    assert entity["type"] == "image" and entity["id"].isdigit()
    assert entity["description"] == "Le lavoir"
    assert entity["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert entity["meta"]["original"] == {"width": 200, "height": 300, "size": "200x300", "aspect": 200 / 300}
    assert entity["remote_url"] is None and entity["preview_remote_url"] is None and entity["text_url"] is None
    assert entity["blurhash"] and len(entity["blurhash"]) >= 6
    assert entity["url"].startswith("https://a.test/media/") and entity["url"].endswith("/original.jpg")
    image = await check_served(rig, entity, "image/jpeg")
    assert image.size == (200, 300)  # turned as orientation 6 says
    assert image.getpixel((100, 20))[0] > 200 and image.getpixel((100, 280))[2] > 200  # red on top now
    exif = image.getexif()
    assert ExifTags.Base.Orientation not in exif and ExifTags.Base.Make not in exif
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in image.info and "xmp" not in image.info and "comment" not in image.info
    raw = stored_files_for(rig, entity["url"]).read_bytes()
    assert b"SecretCam" not in raw and b"XMPSECRET" not in raw and b"COMMENTSECRET" not in raw
    rows = await rig.rows(MediaAttachment)
    assert len(rows) == 1 and rows[0].actor_id == rig["alder"].actor_id and rows[0].post_id is None
    assert rows[0].processed and rows[0].file_size == len(raw)
    assert len(rows[0].file_key) == 32 and rows[0].file_key in entity["url"]
    for path in stored_files(rig):
        assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("maker, filename, content_type, served_type, mode", [
    (png_with_alpha, "a.png", "image/png", "image/png", "RGBA"),
    (webp_image, "a.webp", "image/webp", "image/webp", "RGB"),
    (gif_image, "a.gif", "image/gif", "image/gif", "P"),
    (mpo_image, "a.jpg", "image/jpeg", "image/jpeg", "RGB"),
])
async def test_png_webp_and_gif_keep_their_format(rig: Any, maker: Any, filename: str, content_type: str,
                                                  served_type: str, mode: str) -> None:
    status, entity = await upload(rig, "birch", maker(), filename=filename, content_type=content_type)
    assert status == 200, entity
    assert entity["blurhash"]
    image = await check_served(rig, entity, served_type)
    assert image.mode == mode
    assert getattr(image, "n_frames", 1) == 1  # a GIF keeps its first frame only
    if mode == "RGBA":
        assert image.getpixel((10, 10))[3] == 0 and image.getpixel((100, 10))[3] == 255
    assert not image.getexif()
    assert len(stored_files(rig)) == 2


async def test_v1_upload_answers_200_with_the_entity(rig: Any) -> None:
    status, entity = await upload(rig, "cedar", webp_image(), version="v1", filename="x.webp",
                                  content_type="image/webp")
    assert status == 200 and entity["url"] and entity["preview_url"]
    assert entity["description"] is None and entity["meta"]["focus"] == {"x": 0.0, "y": 0.0}


async def test_large_image_is_scaled_to_mastodons_pixel_limit(rig: Any) -> None:
    data = encode(Image.new("RGB", (6000, 3000), (10, 200, 30)), "JPEG", quality=70)
    status, entity = await upload(rig, "alder", data)
    assert status == 200, entity
    width, height = entity["meta"]["original"]["width"], entity["meta"]["original"]["height"]
    assert width * height <= 3840 * 2160 and abs(width / height - 2.0) < 0.01
    assert max(entity["meta"]["small"]["width"], entity["meta"]["small"]["height"]) == 640


def test_process_image_crops_for_avatars() -> None:
    processed = media_service.process_image(jpeg_with_exif(), crop=(400, 400), preview_box=(120, 120))
    assert (processed.width, processed.height) == (400, 400)
    assert (processed.preview_width, processed.preview_height) == (120, 120)
    image = Image.open(io.BytesIO(processed.data))
    assert image.size == (400, 400) and not image.getexif()
    assert image.getpixel((200, 10))[0] > 200 and image.getpixel((200, 390))[2] > 200  # oriented first


# --- refused uploads -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, data, expected", [
    ("bomb", png_bomb(), 422),
    ("bomb_between_limit_and_twice", png_bomb((6000, 6000)), 422),
    ("text_named_jpg", b"Bonjour, ceci n'est pas une image.\n" * 20, 422),
    ("empty", b"", 422),
    ("truncated_jpeg", truncated_jpeg(), 422),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 422),
    ("bmp", encode(Image.new("RGB", (10, 10)), "BMP"), 422),
    ("oversize", b"\xff\xd8" + b"\0" * (17 * 1024 * 1024), 413),
])
async def test_refused_uploads_store_nothing(rig: Any, name: str, data: bytes, expected: int) -> None:
    status, body = await upload(rig, "alder", data)
    assert status == expected, (name, body)
    assert isinstance(body, dict) and body["error"]
    await assert_nothing_stored(rig)


async def test_oversize_streamed_without_length_is_cut_at_16_mib(rig: Any) -> None:
    boundary = "xxBOUNDARYxx"

    async def body() -> AsyncIterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(17 * 16):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    status, answer = await rig.api("alder").post(
        "/api/v2/media", data=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 413, answer
    await assert_nothing_stored(rig)


async def test_bad_fields_and_missing_file_store_nothing(rig: Any) -> None:
    api = rig.api("alder")
    status, _ = await upload(rig, "alder", png_with_alpha(), description="x" * 1501)
    assert status == 422
    status, _ = await upload(rig, "alder", png_with_alpha(), focus="2,0")
    assert status == 422
    status, _ = await upload(rig, "alder", png_with_alpha(), focus="left")
    assert status == 422
    status, _ = await api.post("/api/v2/media", data={"description": "no file"})
    assert status == 422
    status, _ = await api.post("/api/v2/media", json={"file": "aGVsbG8="})
    assert status == 422
    await assert_nothing_stored(rig)


async def test_upload_needs_a_token_with_write_media(rig: Any) -> None:
    status, _ = await rig.api().post("/api/v2/media", data=form(png_with_alpha()))
    assert status == 401
    reader = await rig.token_for(rig["alder"].actor_id, scopes="read")
    status, _ = await rig.api().post("/api/v2/media", data=form(png_with_alpha()),
                                     headers={"Authorization": f"Bearer {reader}"})
    assert status == 403
    await assert_nothing_stored(rig)


# --- GET, PUT, DELETE /api/v1/media/:id ------------------------------------------------------------


async def test_get_and_put_own_media(rig: Any) -> None:
    _, entity = await upload(rig, "alder", png_with_alpha())
    api = rig.api("alder")
    status, got = await api.get(f"/api/v1/media/{entity['id']}")
    assert status == 200 and got == entity
    status, put = await api.put(f"/api/v1/media/{entity['id']}",
                                json={"description": "Un chat", "focus": "-1,1"})
    assert status == 200
    assert put["description"] == "Un chat" and put["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    assert put["url"] == entity["url"]
    status, put = await api.put(f"/api/v1/media/{entity['id']}", data={"description": "Un chien"})
    assert status == 200 and put["description"] == "Un chien" and put["meta"]["focus"] == {"x": -1.0, "y": 1.0}
    for bad in ({"description": "x" * 1501}, {"focus": "0,1.5"}, {"focus": "nan,0"}):
        status, _ = await api.put(f"/api/v1/media/{entity['id']}", json=bad)
        assert status == 422
    row = (await rig.rows(MediaAttachment))[0]
    assert (row.description, row.focus_x, row.focus_y) == ("Un chien", -1.0, 1.0)


async def test_others_media_is_not_found_and_unchanged(rig: Any) -> None:
    _, entity = await upload(rig, "alder", png_with_alpha(), description="À moi")
    mid = entity["id"]
    birch = rig.api("birch")
    assert (await birch.get(f"/api/v1/media/{mid}"))[0] == 404
    assert (await birch.put(f"/api/v1/media/{mid}", json={"description": "pris"}))[0] == 404
    assert (await birch.delete(f"/api/v1/media/{mid}"))[0] == 404
    assert (await birch.get("/api/v1/media/999999999"))[0] == 404
    assert (await birch.get("/api/v1/media/abc"))[0] == 404
    row = (await rig.rows(MediaAttachment))[0]
    assert row.description == "À moi"
    assert len(stored_files(rig)) == 2


async def test_attached_media_can_no_longer_be_fetched_changed_or_deleted(rig: Any) -> None:
    _, entity = await upload(rig, "alder", png_with_alpha(), description="avant")
    post_id = await make_post(rig, "alder")
    async with write_session(rig.sessionmaker) as session:
        rows = await media_service.get_attachable_media(session, rig["alder"].actor_id, [int(entity["id"])])
        media_service.attach_media(rows, post_id)
    api = rig.api("alder")
    assert (await api.get(f"/api/v1/media/{entity['id']}"))[0] == 404
    assert (await api.put(f"/api/v1/media/{entity['id']}", json={"description": "après"}))[0] == 404
    status, body = await api.delete(f"/api/v1/media/{entity['id']}")
    assert status == 422 and "status" in body["error"]
    row = (await rig.rows(MediaAttachment))[0]
    assert row.post_id == post_id and row.description == "avant"
    assert len(stored_files(rig)) == 2
    async with rig.sessionmaker() as session:
        loaded = await media_service.load_media_for_posts(session, [post_id, 1])
    assert [m.id for m in loaded[post_id]] == [int(entity["id"])] and 1 not in loaded
    assert media_service.media_to_api(loaded[post_id][0], rig.base_url) == {**entity, "description": "avant"}


async def test_delete_own_unattached_media_removes_row_and_files(rig: Any) -> None:
    _, entity = await upload(rig, "alder", png_with_alpha())
    status, body = await rig.api("alder").delete(f"/api/v1/media/{entity['id']}")
    assert status == 200 and body == {}
    await assert_nothing_stored(rig)
    assert (await fetch(rig, entity["url"]))[0] == 404


async def test_attachable_media_refuses_others_too_many_and_attached(rig: Any) -> None:
    ids = [int((await upload(rig, "alder", webp_image(), filename="a.webp", content_type="image/webp"))[1]["id"])
           for _ in range(5)]
    _, theirs = await upload(rig, "birch", webp_image(), filename="a.webp", content_type="image/webp")
    alder = rig["alder"].actor_id
    post_id = await make_post(rig, "alder")
    async with write_session(rig.sessionmaker) as session:
        with pytest.raises(media_service.MediaError):
            await media_service.get_attachable_media(session, alder, ids)
        with pytest.raises(media_service.MediaError):
            await media_service.get_attachable_media(session, alder, [ids[0], int(theirs["id"])])
        got = await media_service.get_attachable_media(session, alder, [ids[3], ids[1], ids[3]])
        assert [m.id for m in got] == [ids[3], ids[1]]
        media_service.attach_media(got, post_id)
    async with write_session(rig.sessionmaker) as session:
        with pytest.raises(media_service.MediaError):
            await media_service.get_attachable_media(session, alder, [ids[1]])


# --- the files ---------------------------------------------------------------------------------------


async def test_media_paths_that_name_no_file_are_404(rig: Any) -> None:
    _, entity = await upload(rig, "alder", png_with_alpha())
    path = entity["url"][len(rig.base_url):]
    _, _, prefix, key, name = path.split("/")
    outside = Path(rig.settings.media.path).parent / "secret.txt"
    outside.write_text("not for you")
    attempts = [
        f"/media/{prefix}/{key}/",
        f"/media/{prefix}/{key}",
        f"/media/{prefix}/{key}/original.jpg",
        f"/media/{prefix}/{key}/original.png.txt",
        f"/media/{prefix}/{key}/.upload-x",
        f"/media/{prefix}/{key.upper()}/{name}",
        f"/media/zz/{key}/{name}",
        f"/media/{prefix}/{key[:-1]}/{name}",
        f"/media/{prefix}/{key}/..%2f..%2f..%2fsecret.txt",
        f"/media/{prefix}/{key}/%2e%2e",
        "/media/../secret.txt",
        "/media/%2e%2e/%2e%2e/secret.txt",
        f"/media/{prefix}/..%2f{key}/{name}",
        f"/media/{prefix}/{key}/..%2F..%2F..%2Fsecret.txt",
        "/media/",
        f"/media/{prefix}/",
    ]
    for attempt in attempts:
        async with rig.client.get(URL(attempt, encoded=True)) as response:
            text = await response.text()
            assert response.status == 404, attempt
            assert "not for you" not in text
    async with rig.client.get(path) as response:
        assert response.status == 200


# --- orphans -----------------------------------------------------------------------------------------


async def test_cleanup_removes_only_old_unattached_uploads(rig: Any) -> None:
    entities = [(await upload(rig, "alder", png_with_alpha()))[1] for _ in range(3)]
    old_orphan, old_attached, recent_orphan = (int(e["id"]) for e in entities)
    post_id = await make_post(rig, "alder")
    two_days_ago = utcnow() - dt.timedelta(days=2)
    async with write_session(rig.sessionmaker) as session:
        await session.execute(update(MediaAttachment).where(MediaAttachment.id.in_([old_orphan, old_attached]))
                              .values(created_at=two_days_ago))
        await session.execute(update(MediaAttachment).where(MediaAttachment.id == old_attached)
                              .values(post_id=post_id))
        await session.execute(update(MediaAttachment).where(MediaAttachment.id == recent_orphan)
                              .values(created_at=utcnow() - dt.timedelta(hours=23)))
    root = Path(rig.settings.media.path)
    async with write_session(rig.sessionmaker) as session:
        removed = await media_service.cleanup_orphans(session, root, dt.timedelta(days=1))
    assert removed == 1
    assert sorted(m.id for m in await rig.rows(MediaAttachment)) == sorted([old_attached, recent_orphan])
    assert (await fetch(rig, entities[0]["url"]))[0] == 404
    assert not stored_files_for(rig, entities[0]["url"]).parent.exists()
    for entity in entities[1:]:
        assert (await fetch(rig, entity["url"]))[0] == 200
        assert (await fetch(rig, entity["preview_url"]))[0] == 200
    assert len(stored_files(rig)) == 4
    async with write_session(rig.sessionmaker) as session:
        assert await media_service.cleanup_orphans(session, root, dt.timedelta(days=1)) == 0


async def test_broken_multipart_bodies_are_refused(rig: Any) -> None:
    api = rig.api("alder")
    attempts = [
        ("multipart/form-data", b"--x\r\nnothing"),
        ("multipart/form-data; boundary=x", b"garbage without any boundary"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"),
        ("multipart/form-data; boundary=x", b""),
    ]
    for content_type, body in attempts:
        status, answer = await api.post("/api/v2/media", data=body, headers={"Content-Type": content_type})
        assert status in (400, 422), (content_type, body, status, answer)
        assert isinstance(answer, dict) and answer["error"]
    await assert_nothing_stored(rig)
