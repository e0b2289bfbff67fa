"""`X-RateLimit-*` on every API answer, errors included: a client that backs off by them sees each
request counted, whether it was served (200), refused (401, 404, 422) or aimed at no route at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voisinage.models.post import Post
from voisinage.server.settings import Settings

from ..conftest import make_settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, ratelimit={"api_per_5min": 6})


async def test_every_answer_carries_the_limit_and_the_last_is_429(rig: Any) -> None:
    rig.hold_clock()
    token = {"Authorization": f"Bearer {rig['alder'].token}"}
    calls = [("GET", "/api/v1/timelines/home", token, None, 200),
             ("GET", "/api/v1/statuses/999", token, None, 404),
             ("GET", "/api/v1/statuses/abc", token, None, 404),
             ("POST", "/api/v1/statuses", token, {"status": ""}, 422),
             ("GET", "/api/v1/no/such/route", token, None, 404),
             ("GET", "/api/v1/notifications", {}, None, 401)]  # the same address, no token
    for remaining, (method, path, headers, body, wanted) in zip(range(5, -1, -1), calls, strict=True):
        async with rig.client.request(method, path, headers=headers, json=body) as response:
            assert response.status == wanted, (path, response.status)
            assert response.headers["X-RateLimit-Limit"] == "6", path
            assert response.headers["X-RateLimit-Remaining"] == str(remaining), path
            assert response.headers["X-RateLimit-Reset"].endswith("Z"), path
            assert "error" in await response.json() or wanted == 200
    posts = await rig.count(Post)
    async with rig.client.post("/api/v1/statuses", headers=token, json={"status": "de trop"}) as response:
        assert response.status == 429 and (await response.json()) == {"error": "Too many requests"}
        assert response.headers["X-RateLimit-Remaining"] == "0"
    assert await rig.count(Post) == posts
