"""Streaming with a real websocket client: events reach exactly the readers allowed to see them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

QUIET = 0.4  # how long "nothing arrives" is watched for


async def _connect(rig: Any, who: str, stream: str | None = None, how: str = "header", **query: str) -> Any:
    token = rig[who].token
    params = dict(query)
    headers: dict[str, str] = {}
    protocols: tuple[str, ...] = ()
    if stream:
        params["stream"] = stream
    if how == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif how == "protocol":
        protocols = (token,)
    else:
        params["access_token"] = token
    return await rig.client.ws_connect("/api/v1/streaming", params=params, headers=headers, protocols=protocols)


async def _next(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    message = await ws.receive_str(timeout=timeout)
    return orjson.loads(message)


async def _nothing(ws: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive_str(timeout=QUIET)


async def _post(rig: Any, who: str, text: str, visibility: str = "public", **extra: Any) -> dict[str, Any]:
    status, body = await rig.api(who).post("/api/v1/statuses", json={"status": text, "visibility": visibility,
                                                                      **extra})
    assert status == 200, body
    return body


async def test_user_stream_gets_the_neighbours_post_as_the_villages_boost(rig):
    ws = await _connect(rig, "birch", "user")
    post = await _post(rig, "alder", "Vends bois de chauffage #annonce")
    message = await _next(ws)
    assert message["event"] == "update" and message["stream"] == ["user"]
    payload = orjson.loads(message["payload"])  # the payload is a JSON string, as Mastodon sends it
    assert payload["reblog"]["id"] == post["id"]
    assert payload["account"]["group"] is True
    await ws.close()


@pytest.mark.parametrize("how", ["header", "protocol", "query"])
async def test_the_token_can_come_three_ways(rig, how):
    ws = await _connect(rig, "birch", "public:local", how=how)
    post = await _post(rig, "alder", "Bonjour")
    message = await _next(ws)
    assert message["stream"] == ["public:local"] and orjson.loads(message["payload"])["id"] == post["id"]
    await ws.close()


async def test_unlisted_post_never_reaches_another_village(rig):
    cedar = await _connect(rig, "cedar", "user")
    await cedar.send_str(orjson.dumps({"type": "subscribe", "stream": "public:local"}).decode())
    birch = await _connect(rig, "birch", "user")
    # cedar follows the north village and alder: still must not receive a village-only post
    await rig.api("cedar").post(f"/api/v1/accounts/{rig.village_ids['north']}/follow")
    await rig.api("cedar").post(f"/api/v1/accounts/{rig['alder'].id}/follow")
    await asyncio.sleep(0.05)
    while True:  # drop anything the follows caused
        try:
            await cedar.receive_str(timeout=0.2)
        except TimeoutError:
            break
    post = await _post(rig, "alder", "Réunion de quartier", "unlisted")
    seen = orjson.loads((await _next(birch))["payload"])
    assert post["id"] in (seen["id"], (seen.get("reblog") or {}).get("id"))
    await _nothing(cedar)
    await cedar.close()
    await birch.close()


async def test_direct_message_reaches_only_the_mentioned(rig):
    birch = await _connect(rig, "birch", "direct")
    cedar = await _connect(rig, "cedar", "direct")
    dogwood = await _connect(rig, "dogwood", "user")
    post = await _post(rig, "alder", "@birch le code est 1234", "direct")
    message = await _next(birch)
    assert message["stream"] == ["direct"] and orjson.loads(message["payload"])["id"] == post["id"]
    await _nothing(cedar)
    await _nothing(dogwood)
    for ws in (birch, cedar, dogwood):
        await ws.close()


async def test_notifications_and_deletes(rig):
    alder = await _connect(rig, "alder", "user:notification")
    post = await _post(rig, "alder", "Qui a une échelle ?")
    await rig.api("cedar").post(f"/api/v1/statuses/{post['id']}/favourite")
    message = await _next(alder)
    assert message["event"] == "notification"
    note = orjson.loads(message["payload"])
    assert note["type"] == "favourite" and note["account"]["username"] == "cedar"

    public = await _connect(rig, "birch", "public:local")
    await rig.api("alder").delete(f"/api/v1/statuses/{post['id']}")
    message = await _next(public)
    assert message == {"stream": ["public:local"], "event": "delete", "payload": post["id"]}
    await alder.close()
    await public.close()


async def test_hashtag_stream_follows_category_synonyms(rig):
    ws = await _connect(rig, "cedar", "hashtag", tag="annonce")
    post = await _post(rig, "alder", "Te koop: fiets #zoekertje")
    message = await _next(ws)
    assert message["stream"] == ["hashtag", "annonce"]
    assert orjson.loads(message["payload"])["id"] == post["id"]
    await ws.close()


async def test_bad_subscriptions_answer_an_error_and_keep_the_stream(rig):
    ws = await _connect(rig, "birch")
    await ws.send_str("not json")
    assert "error" in await _next(ws)
    await ws.send_str(orjson.dumps({"type": "subscribe", "stream": "nope"}).decode())
    assert (await _next(ws))["status"] == 400
    await ws.send_str(orjson.dumps({"type": "subscribe", "stream": "hashtag"}).decode())
    assert (await _next(ws))["status"] == 400
    await ws.send_str(orjson.dumps({"type": "subscribe", "stream": "public"}).decode())
    post = await _post(rig, "alder", "Toujours là")
    assert orjson.loads((await _next(ws))["payload"])["id"] == post["id"]
    await ws.close()


async def test_anonymous_and_wrong_tokens_are_refused(rig):
    async with rig.client.get("/api/v1/streaming", params={"stream": "public"}) as response:
        assert response.status == 401
    async with rig.client.get("/api/v1/streaming", params={"stream": "public", "access_token": "nope"}) as r:
        assert r.status == 401


async def test_health_and_server_sent_events(rig):
    status, body = await rig.api("birch").get("/api/v1/streaming/health")
    assert status == 200 and body == "OK"
    headers = {"Authorization": f"Bearer {rig['birch'].token}"}
    async with rig.client.get("/api/v1/streaming/public/local", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        await response.content.readuntil(b"\n\n")  # the opening comment
        post = await _post(rig, "alder", "Par SSE")
        event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 3)
        lines = event.decode().strip().split("\n")
        assert lines[0] == "event: update"
        assert orjson.loads(lines[1][len("data: "):])["id"] == post["id"]


async def test_a_muted_account_does_not_stream(rig):
    status, _ = await rig.api("birch").post(f"/api/v1/accounts/{rig['alder'].id}/mute")
    assert status == 200
    ws = await _connect(rig, "birch", "public:local")
    await _post(rig, "alder", "Muet pour birch")
    await _nothing(ws)
    other = await _post(rig, "cedar", "Pas muet")
    assert orjson.loads((await _next(ws))["payload"])["id"] == other["id"]
    await ws.close()
