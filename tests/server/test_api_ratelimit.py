"""The API-wide limit: `ratelimit.api_per_5min` per token and per client IP, with Mastodon's headers."""

import pytest

from voisinage.models.post import Post
from voisinage.server.app import create_app

from ..conftest import make_settings
from ..rig.commune import Commune


async def _limited(aiohttp_client, db_url, tmp_path, **server):
    settings = make_settings(db_url, tmp_path, ratelimit={"api_per_5min": 5}, **server)
    commune = Commune(await aiohttp_client(create_app(settings))).hold_clock()
    await commune.add_village("north")
    await commune.add_resident("alder")
    await commune.add_resident("birch")
    return commune


async def test_requests_past_the_limit_get_429_and_nothing_is_done(aiohttp_client, db_url, tmp_path):
    c = await _limited(aiohttp_client, db_url, tmp_path)
    api = c.api("alder")
    for expected_remaining in (4, 3, 2, 1, 0):
        status, _ = await api.get("/api/v1/timelines/home")
        assert status == 200
        assert api.last.headers["X-RateLimit-Limit"] == "5"
        assert api.last.headers["X-RateLimit-Remaining"] == str(expected_remaining)
        assert api.last.headers["X-RateLimit-Reset"].endswith("Z")
    status, body = await api.post("/api/v1/statuses", json={"status": "trop"})
    assert status == 429 and body == {"error": "Too many requests"}
    assert api.last.headers["X-RateLimit-Remaining"] == "0"
    assert await c.count(Post) == 0


async def test_the_client_ip_is_limited_across_tokens(aiohttp_client, db_url, tmp_path):
    c = await _limited(aiohttp_client, db_url, tmp_path)
    for _ in range(5):
        assert (await c.api("alder").get("/api/v1/instance"))[0] == 200
    assert (await c.api("birch").get("/api/v1/instance"))[0] == 429


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(aiohttp_client, db_url, tmp_path):
    trusted = await _limited(aiohttp_client, db_url, tmp_path, server={"trusted_proxies": ["127.0.0.1", "::1"]})
    for i in range(5):
        status, _ = await trusted.api().get("/api/v1/instance", headers={"X-Forwarded-For": "203.0.113.7"})
        assert status == 200
    assert (await trusted.api().get("/api/v1/instance", headers={"X-Forwarded-For": "203.0.113.7"}))[0] == 429
    # another resident behind the same proxy is another address
    assert (await trusted.api().get("/api/v1/instance", headers={"X-Forwarded-For": "203.0.113.8"}))[0] == 200


@pytest.mark.parametrize("header", ["203.0.113.7", "203.0.113.8"])
async def test_forwarded_addresses_are_ignored_from_untrusted_peers(aiohttp_client, db_url, tmp_path, header):
    c = await _limited(aiohttp_client, db_url, tmp_path)
    for _ in range(5):
        await c.api().get("/api/v1/instance", headers={"X-Forwarded-For": f"198.51.100.{_}"})
    status, _ = await c.api().get("/api/v1/instance", headers={"X-Forwarded-For": header})
    assert status == 429


async def test_zero_means_unlimited(aiohttp_client, db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, ratelimit={"api_per_5min": 0})
    c = Commune(await aiohttp_client(create_app(settings)))
    for _ in range(20):
        status, _ = await c.api().get("/api/v1/instance")
        assert status == 200
    async with c.client.get("/api/v1/instance") as response:
        assert "X-RateLimit-Limit" not in response.headers


async def test_on_postgresql_a_request_is_counted_in_one_statement_outside_any_transaction(
        aiohttp_client, db_url, tmp_path):
    """Each API request counts its token and its address: on PostgreSQL one INSERT that commits by
    itself (BEGIN, the statement and COMMIT: three round trips less than before)."""
    from sqlalchemy import event, select

    from voisinage.models.meta import RateCounter, hit_counters_alone
    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's single process counts in its memory")
    c = await _limited(aiohttp_client, db_url, tmp_path)
    engine = c.app[ENGINE]
    api = c.api("alder")
    with recorded_statements(engine) as seen:
        status, _ = await api.get("/api/v1/instance")
    assert status == 200 and api.last.headers["X-RateLimit-Remaining"] == "4"
    counting = [s for s in seen if "rate_counters" in s]
    assert len(counting) == 1 and counting[0].lstrip().startswith("INSERT"), counting
    async with c.sessionmaker() as session:
        counts = sorted((await session.execute(select(RateCounter.key, RateCounter.count))).all())
    assert [count for _, count in counts] == [1, 1] and {key.split(":")[1] for key, _ in counts} == {"ip", "token"}

    begun: list[object] = []

    def on_begin(connection: object) -> None:
        begun.append(connection)

    event.listen(engine.sync_engine, "begin", on_begin)
    try:
        for expected in (1, 2):
            found, _ = await hit_counters_alone(c.sessionmaker, ["x:a", "x:b", "x:a"], 300, 1_000_000.0)
            assert found == {"x:a": expected, "x:b": expected}
    finally:
        event.remove(engine.sync_engine, "begin", on_begin)
    assert begun == []  # SQLAlchemy began no transaction: the INSERT committed alone
