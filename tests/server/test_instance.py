"""Instance endpoints, CORS and the error shape, as apps see them before logging in."""

import re


async def test_instance_v1_answers_without_a_token(rig):
    status, body = await rig.api().get("/api/v1/instance")
    assert status == 200
    assert body["uri"] == "a.test"
    assert re.match(r"^\d+\.\d+\.\d+ \(compatible; Voisinage ", body["version"])
    assert body["urls"]["streaming_api"] == "wss://a.test"
    assert body["stats"]["user_count"] == 4
    assert body["configuration"]["statuses"]["max_characters"] == 500
    assert body["rules"] and all(r["text"] for r in body["rules"])


async def test_instance_v2_has_what_ivory_and_tusky_read(rig):
    status, body = await rig.api().get("/api/v2/instance")
    assert status == 200
    assert body["domain"] == "a.test"
    assert body["api_versions"]["mastodon"] >= 2
    assert body["configuration"]["urls"]["streaming"] == "wss://a.test"
    assert body["registrations"]["enabled"] is True
    assert body["registrations"]["url"] == "https://a.test/register"
    assert "email" in body["contact"]
    assert body["thumbnail"]["url"].startswith("https://a.test/")
    assert "Nord" in body["description"]


async def test_trailing_slash_is_accepted(rig):
    status, body = await rig.api().get("/api/v1/instance/")
    assert status == 200 and body["uri"] == "a.test"


async def test_custom_emojis_is_the_real_empty_set(rig):
    assert await rig.api("alder").get("/api/v1/custom_emojis") == (200, [])


async def test_cors_headers_and_preflight(rig):
    async with rig.client.options("/api/v1/timelines/home", headers={
            "Origin": "https://elk.zone", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "GET" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "authorization"
    async with rig.client.get("/api/v1/instance", headers={"Origin": "https://elk.zone"}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Link" in response.headers["Access-Control-Expose-Headers"]


async def test_unknown_api_route_is_a_json_404(rig):
    status, body = await rig.api("alder").get("/api/v1/nothing-here")
    assert status == 404
    assert body == {"error": "Record not found"}


async def test_anonymous_and_wrong_tokens_get_401_json(rig):
    status, body = await rig.api().get("/api/v1/timelines/home")
    assert status == 401 and "error" in body
    async with rig.client.get("/api/v1/timelines/home", headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
        assert (await r.json())["error"]
