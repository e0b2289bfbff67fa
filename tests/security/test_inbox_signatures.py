"""Inbox signature rows at the real inbox (the pair rig, real keys), beyond tests/federation/test_inbox.py:
weak algorithms, missing host/date/(request-target), SHA-512-only Digest, an `expires` that has passed,
RFC 9421 with a Content-Digest that does not match, and a signature header that is garbage.
Each: 401 and nothing stored."""

from __future__ import annotations

import datetime as dt
import time

import orjson

from voisinage.federation.local_keys import private_key_of
from voisinage.federation.signatures import (
    digest_header,
    http_date,
    sign_cavage,
    sign_request,
    sign_request_rfc9421,
)
from voisinage.federation.workers import ensure_instance_actor
from voisinage.models.actor import Actor

from ..federation.test_inbox import A, B, actor_on, create_note, send, stored
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


# -- clock window, both directions, at its edges ---------------------------------------------------

CLOCK_CASES = [(dt.timedelta(minutes=55), 202), (dt.timedelta(minutes=65), 401),
               (-dt.timedelta(minutes=60), 202), (-dt.timedelta(minutes=70), 401)]


async def test_clock_skew_both_ways_is_accepted_inside_the_window_and_refused_outside(pair: Pair) -> None:
    """Date may be up to 1 h ahead, and up to 5 min + 1 h behind: just inside passes, just outside is 401."""
    assert await send(pair, create_note(activity_id=f"{B}/warm-clock")) == 202
    for offset, wanted in CLOCK_CASES:
        before = await stored(pair)
        now = dt.datetime.now(dt.UTC) + offset
        activity = create_note(activity_id=f"{B}/clock/{offset.total_seconds():+.0f}")
        assert await send(pair, activity, now=now) == wanted, offset
        assert (await stored(pair))[0] == before[0] + (1 if wanted == 202 else 0), offset


# -- replaying a captured request -------------------------------------------------------------------

async def signed(p: Pair, activity_id: str) -> tuple[bytes, dict[str, str]]:
    """A correctly signed POST to a.test's shared inbox, as bytes and headers, to replay at will."""
    await ensure_instance_actor(p.ctx(p.a))
    await ensure_instance_actor(p.ctx(p.b))
    cedar = await actor_on(p.b, "cedar")
    raw = orjson.dumps(create_note(activity_id=activity_id))
    headers = sign_request("POST", f"{A}/inbox", {"Content-Type": "application/activity+json"}, raw,
                           cedar.key_id, private_key_of(cedar))
    return raw, headers


async def test_replayed_signature_is_a_no_op_and_cannot_carry_anything_else(pair: Pair) -> None:
    raw, headers = await signed(pair, f"{B}/replayed")
    before = await stored(pair)
    assert await post_raw(pair, raw, headers) == 202
    assert await post_raw(pair, raw, headers) == 202  # the same bytes again: accepted, not stored twice
    assert (await stored(pair))[0] == before[0] + 1
    after_first = await stored(pair)
    other = raw.replace(b"/replayed", b"/smuggled")  # another activity under the captured signature
    assert await post_raw(pair, other, headers) == 401
    assert await post_raw(pair, other, {**headers, "Digest": digest_header(other)}) == 401
    assert await post_raw(pair, raw, headers, path="/users/alder/inbox") == 401  # another (request-target)
    assert await post_raw(pair, raw, {**headers, "Host": "a.test.evil"}) == 401  # another host
    assert await post_raw(pair, raw, {**headers, "Host": "A.TEST:443"}) == 401
    assert await stored(pair) == after_first


# -- signed headers that are absent from the request ------------------------------------------------

async def test_signed_header_missing_from_the_request_is_401(pair: Pair) -> None:
    raw, headers = await signed(pair, f"{B}/missing")
    assert await post_raw(pair, *await signed(pair, f"{B}/warm-missing")) == 202
    before = await stored(pair)
    for name in ("Date", "Digest"):
        assert await post_raw(pair, raw, {k: v for k, v in headers.items() if k != name}) == 401, name
    assert await post_raw(pair, raw, {**headers, "Date": "yesterday"}) == 401
    assert await post_raw(pair, raw, {**headers, "Digest": "SHA-256=not base64!"}) == 401
    assert await post_raw(pair, raw, {**headers, "Digest": digest_header(b"other")}) == 401
    assert await stored(pair) == before


# -- keyIds on look-alike hosts: refused before any lookup ------------------------------------------

LOOK_ALIKES = [
    "https://b.test.evil/users/cedar#main-key", "https://evil-b.test/users/cedar#main-key",
    "https://b-test/users/cedar#main-key", "https://ab.test/users/cedar#main-key",
    "https://b.tes/users/cedar#main-key", "https://b.test:8443/users/cedar#main-key",
    "https://b.test:443/users/cedar#main-key", "https://b.t\u0435st/users/cedar#main-key",  # Cyrillic e
    "https://xn--b-test-xyz/users/cedar#main-key", "https://b.test@evil.test/users/cedar#main-key",
    "https://evil.test/#@b.test/users/cedar", "https://evil.test\\@b.test/users/cedar",
    "https://evil.test?b.test/users/cedar", "b.test/users/cedar#main-key", "//b.test/users/cedar",
    "ftp://b.test/users/cedar#main-key", "https://[::1]/users/cedar#main-key",
]


async def test_look_alike_key_hosts_are_401_before_any_lookup(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/warm-hosts")) == 202
    before = await stored(pair)
    actors_before = await pair.a.count(Actor)
    sent = len(pair.network.sent)
    for key_id in LOOK_ALIKES:
        assert await send(pair, create_note(activity_id=f"{B}/look-alike"), key_id=key_id) == 401, key_id
    assert pair.network.sent[sent:] == []  # nothing was looked up or fetched
    assert await stored(pair) == before
    assert await pair.a.count(Actor) == actors_before


HOST_CASES = [  # (keyId host, passes the partner check) with partners b.test, bücher.test, c.test:8443
    ("B.TEST", True), ("b.test.", True), ("BÜCHER.test", True), ("xn--bcher-kva.test", True),
    ("XN--BCHER-KVA.TEST", True), ("c.test:8443", True), ("bucher.test", False), ("c.test", False),
    ("c.test:8444", False), ("xn--bcher-kva.test.evil", False), ("b.test:80", False), ("bı.test", False),
]


async def test_hosts_are_compared_after_normalisation(pair: Pair) -> None:
    """Case, a trailing dot and IDN spellings name the same partner; anything else is a stranger."""
    from voisinage.federation.inbox import Refused, partner_signature
    from voisinage.federation.partners import add_partner
    from voisinage.models.db import write_session

    async with write_session(pair.a.sessionmaker) as session:
        await add_partner(session, "bücher.test")
        await add_partner(session, "c.test:8443")
    async with pair.a.sessionmaker() as session:
        for host, passes in HOST_CASES:
            key_id = f"https://{host}/users/x#main-key"
            headers = {"Signature": f'keyId="{key_id}",headers="(request-target) host date",signature="AAAA"'}
            try:
                found, _, _ = await partner_signature(pair.ctx(pair.a), session, headers, "https://b.test/a/1")
                assert found == key_id and passes, host
            except Refused as exc:
                assert exc.status == 401 and not passes, host


# -- a key that belongs to one host, an actor on another ---------------------------------------------

async def test_actor_on_another_host_than_the_key_is_401_and_fetches_nothing(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/warm-actor")) == 202
    before = await stored(pair)
    sent = len(pair.network.sent)
    for actor in ("https://b.test.evil/users/cedar", "https://c.test/users/cedar", f"{A}/users/alder",
                  "https://B.TEST/users/cedar/", f"{B}/users/dogwood"):
        activity = create_note(actor=actor, activity_id=f"{B}/users/cedar/statuses/5/activity")
        assert await send(pair, activity, signer="cedar") == 401, actor
    assert [s.url for s in pair.network.sent[sent:] if not s.url.startswith(B)] == []
    assert await stored(pair) == before


# -- bad signatures in a partner's name cannot make us hammer the partner ---------------------------

async def test_bad_signatures_refetch_the_partners_key_at_most_once_a_minute(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/warm-refetch")) == 202
    cedar, dogwood = await actor_on(pair.b, "cedar"), await actor_on(pair.b, "dogwood")
    before = await stored(pair)

    async def forged(n: int) -> int:
        raw = orjson.dumps(create_note(activity_id=f"{B}/forged/{n}"))
        headers = sign_request("POST", f"{A}/inbox", {"Content-Type": "application/activity+json"}, raw,
                               cedar.key_id, private_key_of(dogwood))  # cedar's keyId, another key
        return await post_raw(pair, raw, headers)

    def fetches() -> int:
        return len([s for s in pair.network.sent if s.method == "GET" and s.url == f"{B}/users/cedar"])

    start = fetches()
    for n in range(5):
        assert await forged(n) == 401
    assert fetches() == start + 1  # one refetch (the key might have rotated), not five
    ctx = pair.ctx(pair.a)
    later = time.time() + 61
    ctx.clock = lambda: later
    assert await forged(9) == 401
    assert fetches() == start + 2  # a minute later, once more
    assert await stored(pair) == before
    assert await send(pair, create_note(activity_id=f"{B}/after-refetch")) == 202  # cedar itself still gets in
