"""Scopes, route by route: a token holding exactly the route's scope gets past the guard, a token with
the opposite scope (read for a write route, write for a read route) gets 403, and none of the refused
calls, sent with real ids and a plausible body, changes a single row of any table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from voisinage.models.base import Base
from voisinage.server.routes import ROUTES
from voisinage.server.settings import Settings

from ..conftest import make_settings
from .test_garbage_input import real_ids, real_path

BODY = {"status": "intrus", "title": "intrus", "note": "intrus", "display_name": "intrus", "phrase": "intrus",
        "context": ["home"], "comment": "intrus", "choices": [0], "account_ids": [], "keyword": "intrus"}
SCOPE_REFUSAL = "This action is outside the authorized scopes"
VOLATILE = {"rate_counters"}  # what the rate limiter counts (off here), whatever the answer


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, ratelimit={"api_per_5min": 0})


def opposite(scope: str) -> str:
    """A scope that must not be enough for `scope`."""
    return "write" if scope.startswith("read") else "read"


async def every_row(rig: Any) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: a snapshot that notices any insert, update or delete."""
    out: dict[str, list[str]] = {}
    async with rig.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE:
                continue
            rows = (await session.execute(select(table))).all()
            out[table.name] = sorted(repr(tuple(row)) for row in rows)
    return out


def checked_routes() -> list[Any]:
    return [r for r in ROUTES if r.scope not in (None, "push") and r.path.startswith("/api/")
            and not r.path.startswith("/api/v1/streaming")]


async def test_the_routes_own_scope_passes_and_the_opposite_scope_is_403(rig: Any) -> None:
    ids = await real_ids(rig)
    tokens: dict[str, str] = {}
    for route in checked_routes():
        assert route.scope is not None
        for scope in {route.scope, opposite(route.scope)}:
            if scope not in tokens:
                tokens[scope] = await rig.token_for(rig["alder"].actor_id, scopes=scope)
        path = real_path(route.path, ids)
        headers = {"Authorization": f"Bearer {tokens[opposite(route.scope)]}"}
        async with rig.client.request(route.method, path, json=BODY, headers=headers) as response:
            assert response.status == 403, f"{route.method} {path} with {opposite(route.scope)}: {response.status}"
            assert (await response.json())["error"] == SCOPE_REFUSAL
        if route.method != "GET":
            continue  # the walk with the right scope only reads: writes are the next test's business
        headers = {"Authorization": f"Bearer {tokens[route.scope]}"}
        async with rig.client.request(route.method, path, headers=headers) as response:
            body = await response.json(content_type=None) if response.status >= 400 else {}
            assert response.status != 401 and body.get("error") != SCOPE_REFUSAL, \
                f"{route.method} {path} with {route.scope}: {response.status} {body}"


async def test_refused_calls_with_real_ids_and_bodies_change_no_row(rig: Any) -> None:
    ids = await real_ids(rig)
    push_only = await rig.token_for(rig["alder"].actor_id, scopes="push")
    read_only = await rig.token_for(rig["alder"].actor_id, scopes="read")
    before = await every_row(rig)
    refused = 0
    for route in checked_routes():
        if route.method == "GET":
            continue
        path = real_path(route.path, ids)
        for token in (None, "not-a-token", push_only, read_only):
            if token == read_only and route.scope.startswith("read"):
                continue
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with rig.client.request(route.method, path, json=BODY, headers=headers) as response:
                assert response.status in (401, 403), f"{route.method} {path}: {response.status}"
                refused += 1
    assert refused >= 150
    assert await every_row(rig) == before
