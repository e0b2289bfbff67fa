"""The inbox's body limits with the shapes that dodge a naive check: a chunked body with no
Content-Length, a gzip bomb (small on the wire, huge once inflated), a 100,000-deep array and a
200,000-element one. Each is refused before parsing or by the bounded parser, memory stays bounded
(measured with tracemalloc around the request), and nothing is stored."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import AsyncIterator

import orjson

from voisinage.federation.local_keys import private_key_of
from voisinage.federation.signatures import sign_request
from voisinage.federation.workers import ensure_instance_actor

from ..federation.test_inbox import A, B, actor_on, create_note, stored
from ..rig.pair import Pair

MIB = 1024 * 1024


async def post_measured(p: Pair, data: object, headers: dict[str, str]) -> tuple[int, int]:
    """POST to a.test's inbox; (status, peak bytes allocated while it was handled)."""
    tracemalloc.start()
    try:
        async with p.a.client.post("/inbox", data=data, headers=headers) as response:
            await response.read()
            status = response.status
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return status, peak


async def signed_headers(p: Pair, body: bytes, **extra: str) -> dict[str, str]:
    await ensure_instance_actor(p.ctx(p.a))
    await ensure_instance_actor(p.ctx(p.b))
    cedar = await actor_on(p.b, "cedar")
    return sign_request("POST", f"{A}/inbox", {"Content-Type": "application/activity+json", **extra}, body,
                        cedar.key_id, private_key_of(cedar))


async def test_chunked_body_over_the_cap_is_413_and_stores_nothing(pair: Pair) -> None:
    before = await stored(pair)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"id": "https://b.test/big", "actor": "https://b.test/users/cedar", "pad": "'
        for _ in range(64):  # 4 MiB, never announced by a Content-Length
            yield b"x" * 65536

    status, peak = await post_measured(pair, chunks(), {"Content-Type": "application/activity+json"})
    assert status == 413
    assert peak < 8 * MIB, peak
    assert await stored(pair) == before


async def test_gzip_bomb_is_cut_at_the_cap_and_stores_nothing(pair: Pair) -> None:
    inflated = orjson.dumps(create_note(content="0" * (64 * MIB), activity_id=f"{B}/bomb"))
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 200 * 1024  # small on the wire
    headers = await signed_headers(pair, inflated, **{"Content-Encoding": "gzip"})
    before = await stored(pair)
    status, peak = await post_measured(pair, bomb, headers)
    assert status in (400, 413, 415), status
    assert peak < 24 * MIB, peak
    assert await stored(pair) == before


async def test_hundred_thousand_deep_array_and_huge_array_are_400_with_bounded_memory(pair: Pair) -> None:
    before = await stored(pair)
    head = b'{"id": "https://b.test/deep", "actor": "https://b.test/users/cedar", "a": '
    for body in (head + b"[" * 100_000 + b"]" * 100_000 + b"}",
                 head + b"[" + b",".join([b"0"] * 200_000) + b"]}"):
        assert len(body) < MIB
        status, peak = await post_measured(pair, body, await signed_headers(pair, body))
        assert status == 400
        assert peak < 8 * MIB, peak
    assert await stored(pair) == before
