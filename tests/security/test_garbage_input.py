"""Garbage in, a 4xx out: walk the route table with malformed ids, query strings and bodies.

Every /api and /oauth answer to garbage must be a 4xx (or a 2xx when the garbage was harmless) with
Mastodon's `{"error": ...}` JSON body, never a 500 and never a traceback; a body that cannot be
parsed changes nothing. The federation paths get the same treatment with their own (text) answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from voisinage.models.actor import Actor
from voisinage.models.follow import Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.post import Post
from voisinage.server.routes import ROUTES
from voisinage.server.settings import Settings

from ..conftest import make_settings
from ..federation.partner_helpers import add_remote

BAD_IDS = ["abc", "99999999999999999999", "-1", "1e5", "%F0%9F%92%A9", "1%00", "%ED%A0%80", "%D9%A1%D9%A2"]
SKIP = ("/api/v1/streaming",)
PAGES = ("/oauth/authorize",)
BODILESS = {"POST /api/v1/notifications/clear"}  # takes no parameter at all (as Mastodon): the body is not read  # long-lived answers (SSE, websocket); their parameters are tested there
BAD_QUERIES = [
    "limit=99999999999999999999&max_id=abc&since_id=99999999999999999999&min_id=-1&offset=9999999999999999999999",
    "limit=-1&max_id=%00&types[]=%00&exclude_types[]=zzz&id[]=abc&q=%00%ff&resolve=maybe&local=2&type=%F0%9F",
    "limit[a]=1&max_id[]=1&id=%F0%9F%92%A9&account_id=%ED%A0%80&following=%00&offset=-5",
]
MALFORMED = [b'{"status": ', b"[1, 2]", b'"text"', b"\xff\xfe{}", b"{" * 5000]
WRONG_TYPES = {
    "status": {"a": 1}, "visibility": [1], "in_reply_to_id": {"x": 1}, "media_ids": "abc", "poll": "x",
    "title": ["t"], "note": 5, "display_name": {}, "fields_attributes": "x", "limit": "many",
    "spoiler_text": [None], "sensitive": "perhaps", "language": {"fr": 1}, "account_ids": {"a": {"b": 1}},
    "phrase": [], "context": "home", "keywords_attributes": 7, "expires_in": "soon", "choices": "zero",
    "comment": {"c": 1}, "status_ids": 3, "category": [], "rule_ids": "1", "home": [], "notifications": 3,
    "id": {"x": 1}, "name": [1], "description": {}, "focus": [1, 2], "grant_type": 3, "username": [],
    "password": {}, "email": 1, "agreement": "x", "locale": {}, "reason": [], "invite_code": 9, "scopes": [],
    "client_name": [], "redirect_uris": 4, "website": {}, "code": [], "token": {},
}
NUL_TEXT = {key: "a\u0000b\ufffe" for key in ("status", "title", "note", "display_name", "q", "spoiler_text",
                                             "phrase", "comment", "description", "name", "client_name")}
BIG = "99999999999999999999999"
HUGE = (f'{{"expires_in": {BIG}, "duration": 1e308, "limit": {BIG}, "max_id": {BIG}, "in_reply_to_id": {BIG}, '
        f'"poll": {{"options": ["a", "b"], "expires_in": {BIG}}}, "media_ids": [{BIG}], "choices": [{BIG}], '
        f'"account_ids": [{BIG}], "status_ids": [{BIG}], "notifications": {{"last_read_id": {BIG}}}}}').encode()
DEEP = b'{"status": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001  # as deep as the JSON parser allows
FORM = "status[]=a&status[b]=c&media_ids=abc&%ff=%ff&poll[options]=x&limit=99999999999999999999&title[]="


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """No API rate limit: the walk sends far more than 300 requests, and a 429 would hide a 500."""
    return make_settings(db_url, tmp_path, ratelimit={"api_per_5min": 0})


def concrete(path: str, value: str) -> str:
    """The route's path with every placeholder replaced by `value`."""
    for name in ("{id}", "{account_id}", "{hashtag}", "{name}", "{prefix}", "{key}"):
        path = path.replace(name, value)
    return path


async def counts(rig: Any) -> tuple[int, ...]:
    return (await rig.count(Post), await rig.count(Follow), await rig.count(Actor), await rig.count(InboxItem))


async def call(rig: Any, token: str, method: str, path: str, *, body: bytes | None = None,
               content_type: str = "application/json") -> tuple[int, bytes, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    async with rig.client.request(method, path, data=body, headers=headers,
                                  timeout=aiohttp.ClientTimeout(total=20)) as response:
        return response.status, await response.read(), response.headers.get("Content-Type", "")


def check(what: str, status: int, raw: bytes, ctype: str, *, json_errors: bool = True) -> None:
    """No 500, no traceback; an error answer on /api is Mastodon's JSON."""
    assert status < 500 and status != 429, f"{what} -> {status}: {raw[:300]!r}"
    assert b"Traceback" not in raw and b'File "' not in raw, f"{what} leaks a traceback"
    if json_errors and status >= 400:
        assert ctype.startswith("application/json"), f"{what} -> {status} {ctype}: {raw[:200]!r}"
        payload = orjson.loads(raw)
        assert isinstance(payload, dict) and isinstance(payload.get("error"), str), f"{what}: {payload!r}"


def api_routes() -> list[Any]:
    return [r for r in ROUTES if r.path.startswith(("/api/", "/oauth/")) and not r.path.startswith(SKIP)]


def is_page(path: str) -> bool:
    """The consent page answers in HTML, as every server page does."""
    return path.startswith(PAGES)


async def real_ids(rig: Any) -> dict[str, str]:
    """Ids that exist, so that a garbage query reaches the handler instead of a 404 on the id."""
    status, post = await rig.api("birch").post("/api/v1/statuses", json={"status": "cible #annonce"})
    assert status == 200
    status, listed = await rig.api("alder").post("/api/v1/lists", json={"title": "voisins"})
    assert status == 200
    return {"/accounts/": rig["birch"].id, "/statuses/": post["id"], "/lists/": listed["id"],
            "/timelines/list/": listed["id"], "/follow_requests/": rig["birch"].id}


def real_path(path: str, ids: dict[str, str]) -> str:
    for marker, value in ids.items():
        if marker in path:
            return concrete(path.replace("{account_id}", value), value)
    return concrete(path, "annonce" if "{hashtag}" in path or "{name}" in path else "1")


async def test_garbage_ids_and_queries_on_every_route_are_4xx_json(rig: Any) -> None:
    token = rig["alder"].token
    ids = await real_ids(rig)
    walked = 0
    for route in api_routes():
        paths = [concrete(route.path, bad) for bad in BAD_IDS] if "{" in route.path else [route.path]
        for path in paths:
            status, raw, ctype = await call(rig, token, route.method, path)
            check(f"{route.method} {path}", status, raw, ctype, json_errors=not is_page(path))
        for query in BAD_QUERIES:
            path = f"{real_path(route.path, ids)}?{query}"
            status, raw, ctype = await call(rig, token, route.method, path)
            check(f"{route.method} {path}", status, raw, ctype, json_errors=not is_page(path))
        walked += 1
    assert walked >= 100


async def test_malformed_bodies_are_400_json_and_change_nothing(rig: Any) -> None:
    token = rig["alder"].token
    before = await counts(rig)
    walked = 0
    ok: set[str] = set()
    for route in api_routes():
        if route.method not in ("POST", "PUT", "PATCH") or route.path.startswith("/api/v2/media") \
                or route.path == "/api/v1/media":
            continue
        path = concrete(route.path, "1")
        for raw_body in MALFORMED:
            status, raw, ctype = await call(rig, token, route.method, path, body=raw_body)
            check(f"{route.method} {path} {raw_body[:20]!r}", status, raw, ctype, json_errors=not is_page(path))
            if status < 400:
                ok.add(f"{route.method} {route.path}")
        walked += 1
    assert walked >= 40
    assert ok == BODILESS, sorted(ok)
    assert await counts(rig) == before


async def test_wrong_types_nul_bytes_and_huge_numbers_are_never_a_500(rig: Any) -> None:
    token = rig["alder"].token
    ids = await real_ids(rig)
    for route in api_routes():
        if route.method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        path = real_path(route.path, ids)
        for name, body in (("wrong types", orjson.dumps(WRONG_TYPES)), ("NUL", orjson.dumps(NUL_TEXT)),
                           ("huge numbers", HUGE), ("deep", DEEP)):
            status, raw, ctype = await call(rig, token, route.method, path, body=body)
            check(f"{route.method} {path} {name}", status, raw, ctype, json_errors=not is_page(path))
        status, raw, ctype = await call(rig, token, route.method, path, body=FORM.encode(),
                                        content_type="application/x-www-form-urlencoded")
        check(f"{route.method} {path} form", status, raw, ctype, json_errors=not is_page(path))
    # the NUL and the non-character never reach a stored text
    for post in await rig.rows(Post):
        assert "\u0000" not in (post.content or "") and "\u0000" not in (post.spoiler_text or "")


async def test_federation_paths_with_garbage_are_never_a_500(rig: Any) -> None:
    remote = await add_remote(rig.sessionmaker)
    before = await counts(rig)
    paths = ["/users/%F0%9F%92%A9", "/users/x%00", "/users/alder/statuses/99999999999999999999",
             "/users/alder/statuses/99999999999999999999/activity", "/villages/north/statuses/%D9%A1%D9%A2",
             "/users/alder/outbox?page=99999999999999999999&max_id=abc", "/users/alder/followers?page=%00",
             "/.well-known/webfinger?resource=acct:%00@%ff", "/.well-known/webfinger?resource=" + "a" * 5000,
             "/.well-known/webfinger?resource[]=x", "/nodeinfo/2.1?x=%ff", "/media/%00/%ff/x.png",
             "/media/../../etc/passwd", "/media/a/b/%F0%9F%92%A9.jpg"]
    for path in paths:
        for headers in ({"Accept": "application/activity+json"},
                        remote.headers(path.split("?")[0].replace("%00", "\x00"))):
            async with rig.client.get(path, headers=headers) as response:
                raw = await response.read()
                check(f"GET {path}", response.status, raw, response.headers.get("Content-Type", ""),
                      json_errors=path.startswith(("/.well-known/", "/nodeinfo/")))
    for path in ("/inbox", "/users/%F0%9F%92%A9/inbox", "/villages/%00/inbox"):
        async with rig.client.post(path, data=b'{"id": 1e400, "actor": [[[]]]}',
                                   headers={"Content-Type": "application/activity+json"}) as response:
            raw = await response.read()
            check(f"POST {path}", response.status, raw, response.headers.get("Content-Type", ""))
    assert await counts(rig) == before
