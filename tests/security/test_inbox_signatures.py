"""Inbox signature rows at the real inbox (the pair rig, real keys), beyond tests/federation/test_inbox.py:
weak algorithms, missing host/date/(request-target), SHA-512-only Digest, an `expires` that has passed,
RFC 9421 with a Content-Digest that does not match, and a signature header that is garbage.
Each: 401 and nothing stored."""

from __future__ import annotations

import time

import orjson

from voisinage.federation.local_keys import private_key_of
from voisinage.federation.signatures import digest_header, http_date, sign_cavage, sign_request_rfc9421
from voisinage.federation.workers import ensure_instance_actor

from ..federation.test_inbox import A, B, actor_on, create_note, stored
from ..rig.pair import Pair


async def post_raw(p: Pair, raw: bytes, headers: dict[str, str], path: str = "/inbox") -> int:
    async with p.a.client.post(path, data=raw, headers=headers) as response:
        await response.read()
        return response.status


async def cavage(p: Pair, *, names: list[str], algorithm: str = "rsa-sha256", digest: str | None = None,
                 created: int | None = None, expires: int | None = None, activity_id: str) -> tuple[bytes, dict[str, str]]:
    await ensure_instance_actor(p.ctx(p.a))
    await ensure_instance_actor(p.ctx(p.b))
    cedar = await actor_on(p.b, "cedar")
    raw = orjson.dumps(create_note(activity_id=activity_id))
    headers = {"Host": "a.test", "Date": http_date(), "Digest": digest or digest_header(raw),
               "Content-Type": "application/activity+json"}
    headers["Signature"] = sign_cavage("POST", "/inbox", headers, names, cedar.key_id, private_key_of(cedar),
                                       algorithm=algorithm, created=created, expires=expires)
    return raw, headers


FULL = ["(request-target)", "host", "date", "digest"]
CASES = {
    "no (request-target)": {"names": ["host", "date", "digest"]},
    "no host": {"names": ["(request-target)", "date", "digest"]},
    "no date": {"names": ["(request-target)", "host", "digest"]},
    "algorithm rsa-sha1": {"names": FULL, "algorithm": "rsa-sha1"},
    "algorithm hmac-sha256": {"names": FULL, "algorithm": "hmac-sha256"},
    "Digest SHA-512 only": {"names": FULL, "digest": "SHA-512=" + "A" * 86 + "=="},
}


async def test_weak_or_odd_cavage_signature_is_401_and_stores_nothing(pair: Pair) -> None:
    warm_raw, warm = await cavage(pair, names=FULL, activity_id=f"{B}/warm")
    assert await post_raw(pair, warm_raw, warm) == 202  # the key is known: only the case differs
    before = await stored(pair)
    for case, changes in CASES.items():
        raw, headers = await cavage(pair, activity_id=f"{B}/case", **changes)
        assert await post_raw(pair, raw, headers) == 401, case
    assert await stored(pair) == before


async def test_hs2019_with_expires_passed_is_401(pair: Pair) -> None:
    before = await stored(pair)
    now = int(time.time())
    names = ["(request-target)", "host", "(created)", "(expires)", "digest"]
    raw, headers = await cavage(pair, names=names, algorithm="hs2019", created=now - 120, expires=now - 60,
                                activity_id=f"{B}/expired")
    assert await post_raw(pair, raw, headers) == 401
    assert await stored(pair) == before
    raw, headers = await cavage(pair, names=names, algorithm="hs2019", created=now - 5, expires=now + 300,
                                activity_id=f"{B}/fresh")
    assert await post_raw(pair, raw, headers) == 202  # the same, still valid: accepted


async def test_rfc9421_content_digest_mismatch_is_401(pair: Pair) -> None:
    await ensure_instance_actor(pair.ctx(pair.a))
    await ensure_instance_actor(pair.ctx(pair.b))
    cedar = await actor_on(pair.b, "cedar")
    raw = orjson.dumps(create_note(activity_id=f"{B}/rfc9421"))
    headers = sign_request_rfc9421("POST", f"{A}/inbox", {"Content-Type": "application/activity+json"}, raw,
                                   cedar.key_id, private_key_of(cedar))
    before = await stored(pair)
    assert await post_raw(pair, raw.replace(b"bonjour", b"bonsoir"), headers) == 401
    assert await stored(pair) == before
    assert await post_raw(pair, raw, headers) == 202  # untampered: accepted
    assert (await stored(pair))[0] == before[0] + 1


GARBAGE = ['keyId="', "garbage", 'keyId="https://b.test/users/cedar#main-key",'
           'headers="(request-target) host date digest",signature="%%%"']


async def test_garbage_signature_header_is_401(pair: Pair) -> None:
    before = await stored(pair)
    raw = orjson.dumps(create_note(activity_id=f"{B}/garbage"))
    for signature in GARBAGE:
        headers = {"Host": "a.test", "Date": http_date(), "Digest": digest_header(raw), "Signature": signature,
                   "Content-Type": "application/activity+json"}
        assert await post_raw(pair, raw, headers) == 401, signature
    assert await stored(pair) == before


async def test_activity_without_id_or_actor_is_refused(pair: Pair) -> None:
    from voisinage.federation.signatures import sign_request

    await ensure_instance_actor(pair.ctx(pair.a))
    await ensure_instance_actor(pair.ctx(pair.b))
    cedar = await actor_on(pair.b, "cedar")
    before = await stored(pair)
    for activity in ({"type": "Create", "actor": f"{B}/users/cedar"}, ["not", "an", "object"], "text"):
        raw = orjson.dumps(activity)
        headers = sign_request("POST", f"{A}/inbox", {"Content-Type": "application/activity+json"}, raw,
                               cedar.key_id, private_key_of(cedar))
        assert await post_raw(pair, raw, headers) in (400, 401), activity
    assert await stored(pair) == before



