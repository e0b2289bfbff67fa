"""The inbox, one test per SECURITY.md "Inbox" row: each refusal, and that nothing was stored.

Requests are signed by real actors of b.test (the pair rig) and posted to a.test's inbox, whose key
lookups go back to b.test through the in-process transport.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import select

from voisinage.federation import outbox
from voisinage.federation.local_keys import ensure_local_keys, private_key_of
from voisinage.federation.signatures import digest_header, http_date, sign_cavage, sign_request
from voisinage.federation.workers import ensure_instance_actor
from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.db import write_session
from voisinage.models.follow import Follow
from voisinage.models.inbox_item import InboxItem
from voisinage.models.post import Post
from voisinage.models.queue import FAILED

from ..rig.pair import Pair

A = "https://a.test"
B = "https://b.test"


async def actor_on(commune: Any, name: str) -> Actor:
    """A local actor of `commune`, with keys."""
    async with write_session(commune.sessionmaker) as session:
        actor = await session.scalar(select(Actor).where(Actor.username == name, Actor.domain == ""))
        await ensure_local_keys(session, actor)
    return actor


async def send(p: Pair, activity: Any, *, signer: str = "cedar", path: str = "/inbox", body: bytes | None = None,
               headers: dict[str, str] | None = None, sign: bool = True, now: dt.datetime | None = None,
               key_id: str | None = None) -> int:
    """POST `activity` to a.test as b.test's `signer`; returns the status."""
    await ensure_instance_actor(p.ctx(p.a))
    await ensure_instance_actor(p.ctx(p.b))
    actor = await actor_on(p.b, signer)
    raw = body if body is not None else orjson.dumps(activity)
    out = {"Content-Type": "application/activity+json", "Host": "a.test"}
    if sign:
        out = sign_request("POST", f"{A}{path}", out, raw, key_id or actor.key_id, private_key_of(actor), now=now)
    out.update(headers or {})
    async with p.a.client.post(path, data=raw, headers=out) as response:
        await response.read()
        return response.status


def create_note(note_id: str = f"{B}/users/cedar/statuses/1", author: str = f"{B}/users/cedar",
                actor: str = f"{B}/users/cedar", activity_id: str | None = None, **extra: Any) -> dict[str, Any]:
    note = {"id": note_id, "type": "Note", "attributedTo": author, "content": "<p>bonjour</p>",
            "to": [f"{A}/users/alder"], "tag": {"type": "Mention", "href": f"{A}/users/alder"}, **extra}
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": activity_id or f"{note_id}/activity",
            "type": "Create", "actor": actor, "object": note, "to": note["to"]}


async def stored(p: Pair) -> tuple[int, int, int]:
    return await p.a.count(InboxItem), await p.a.count(Post, Post.local.is_(False)), await p.a.count(Follow)


async def test_accepted_activity_is_stored_once_and_processed(pair: Pair) -> None:
    before = await stored(pair)
    assert await send(pair, create_note()) == 202
    assert await send(pair, create_note()) == 202  # the same activity again: a no-op
    assert await pair.a.count(InboxItem) == before[0] + 1
    await pair.drain()
    assert await pair.a.count(Post, Post.uri == f"{B}/users/cedar/statuses/1") == 1


async def test_unsigned_is_401(pair: Pair) -> None:
    before = await stored(pair)
    assert await send(pair, create_note(), sign=False) == 401
    assert await stored(pair) == before


async def test_key_of_another_actor_is_401(pair: Pair) -> None:
    before = await stored(pair)
    forged = create_note(note_id=f"{B}/users/dogwood/statuses/2", author=f"{B}/users/dogwood",
                         actor=f"{B}/users/dogwood")
    assert await send(pair, forged, signer="cedar") == 401
    assert await stored(pair) == before


async def test_activity_id_on_another_host_is_refused(pair: Pair) -> None:
    before = await stored(pair)
    assert await send(pair, create_note(activity_id=f"{A}/users/alder/statuses/9/activity")) == 401
    assert await stored(pair) == before


async def test_weak_header_set_is_401(pair: Pair) -> None:
    await send(pair, create_note(activity_id=f"{B}/warmup"))  # the key is known: only the set is wrong
    before = await stored(pair)
    cedar = await actor_on(pair.b, "cedar")
    raw = orjson.dumps(create_note(activity_id=f"{B}/weak"))
    headers = {"Host": "a.test", "Date": http_date(), "Digest": digest_header(raw),
               "Content-Type": "application/activity+json"}
    headers["Signature"] = sign_cavage("POST", "/inbox", headers, ["(request-target)", "host", "date"],
                                       cedar.key_id, private_key_of(cedar))  # no digest on a POST
    async with pair.a.client.post("/inbox", data=raw, headers=headers) as response:
        assert response.status == 401
    assert await stored(pair) == before


async def test_digest_mismatch_is_401(pair: Pair) -> None:
    before = await stored(pair)
    cedar = await actor_on(pair.b, "cedar")
    raw = orjson.dumps(create_note())
    headers = sign_request("POST", f"{A}/inbox", {"Host": "a.test"}, raw, cedar.key_id, private_key_of(cedar))
    tampered = raw.replace(b"bonjour", b"bonsoir")
    async with pair.a.client.post("/inbox", data=tampered, headers=headers) as response:
        assert response.status == 401
    assert await stored(pair) == before


async def test_stale_date_is_401(pair: Pair) -> None:
    before = await stored(pair)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    assert await send(pair, create_note(), now=old) == 401
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert await send(pair, create_note(), now=future) == 401
    assert await stored(pair) == before


async def test_look_alike_and_non_partner_hosts_are_401_without_fetch(pair: Pair) -> None:
    before = await stored(pair)
    sent = len(pair.network.sent)
    for key_id in ("https://evil-b.test/users/cedar#main-key", "https://b.test.evil/users/cedar#main-key",
                   "https://c.test/users/cedar#main-key"):
        assert await send(pair, create_note(), key_id=key_id) == 401
    assert len(pair.network.sent) == sent  # nothing looked up
    assert await stored(pair) == before


async def test_partner_removed_is_401(pair: Pair) -> None:
    await pair.partner(pair.a, "b.test", on=False)
    before = await stored(pair)
    assert await send(pair, create_note()) == 401
    assert await stored(pair) == before


async def test_partner_removed_after_its_key_was_cached_is_401(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/first")) == 202  # cedar's key cached
    await pair.partner(pair.a, "b.test", on=False)
    before = await stored(pair)
    assert await send(pair, create_note(activity_id=f"{B}/second")) == 401
    assert await stored(pair) == before


async def test_a_partner_removed_before_its_note_is_handled_gets_nothing_stored(pair: Pair) -> None:
    """The partner check is made again when a received note is handled: a partner removed in between
    gets its item failed and nothing stored. While it is a partner, the check comes with the signer's
    row: handling the note asks no other statement about the signer's host."""
    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    assert await send(pair, create_note(note_id=f"{B}/users/cedar/statuses/kept")) == 202
    with recorded_statements(pair.a.app[ENGINE]) as seen:
        await pair.drain()
    assert await pair.a.count(Post, Post.uri == f"{B}/users/cedar/statuses/kept") == 1
    asking_hosts = [s for s in seen if s.lstrip().upper().startswith("SELECT") and " instances" in s]
    assert len(asking_hosts) == 1 and "JOIN instances" in asking_hosts[0], asking_hosts
    assert await send(pair, create_note(note_id=f"{B}/users/cedar/statuses/late")) == 202
    await pair.partner(pair.a, "b.test", on=False)
    before = await pair.a.count(Post)
    await pair.drain()
    assert await pair.a.count(Post) == before
    (item,) = await pair.a.rows(InboxItem, InboxItem.activity_uri == f"{B}/users/cedar/statuses/late/activity")
    assert item.state == FAILED and "NotPartner" in (item.last_error or "")


async def test_an_activity_signed_with_a_cached_key_is_accepted_with_one_read(pair: Pair) -> None:
    """The partner check, the key's owner and whether the activity is stored already: one statement."""
    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    assert await send(pair, create_note(activity_id=f"{B}/first")) == 202  # cedar's key cached
    with recorded_statements(pair.a.app[ENGINE]) as seen:
        assert await send(pair, create_note(activity_id=f"{B}/second")) == 202
        assert await send(pair, create_note(activity_id=f"{B}/second")) == 202  # a repeat: nothing stored
    reads = [statement for statement in seen if statement.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, reads
    assert await pair.a.count(InboxItem, InboxItem.activity_uri == f"{B}/second") == 1


async def test_blocked_actor_gets_202_and_nothing_is_stored(pair: Pair) -> None:
    assert await send(pair, create_note(activity_id=f"{B}/first")) == 202  # a.test now knows cedar
    async with write_session(pair.a.sessionmaker) as session:
        cedar = await session.scalar(select(Actor).where(Actor.uri == f"{B}/users/cedar"))
        cedar.suspended_at = utcnow()
    before = await stored(pair)
    assert await send(pair, create_note(activity_id=f"{B}/second")) == 202
    assert await stored(pair) == before


async def test_body_over_cap_is_413(pair: Pair) -> None:
    before = await stored(pair)
    big = orjson.dumps(create_note(content="x" * (1024 * 1024)))
    assert await send(pair, None, body=big) == 413
    assert await stored(pair) == before


async def test_deep_or_huge_json_is_400(pair: Pair) -> None:
    before = await stored(pair)
    deep = b'{"id": "https://b.test/x", "actor": "https://b.test/users/cedar", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert await send(pair, None, body=deep) == 400
    huge = b'{"id": "https://b.test/x", "a": [' + b",".join([b"0"] * 200_000) + b"]}"
    assert await send(pair, None, body=huge) == 400
    assert await stored(pair) == before


async def test_accept_of_a_follow_never_sent_creates_nothing(pair: Pair) -> None:
    accept = {"id": f"{B}/users/cedar#accepts/1", "type": "Accept", "actor": f"{B}/users/cedar",
              "object": {"id": f"{A}/users/alder#follows/1", "type": "Follow", "actor": f"{A}/users/alder",
                         "object": f"{B}/users/cedar"}}
    assert await send(pair, accept) == 202
    await pair.drain()
    alder = await actor_on(pair.a, "alder")
    remote = select(Actor.id).where(Actor.domain != "")
    assert await pair.a.count(Follow, Follow.follower_id == alder.id, Follow.target_id.in_(remote)) == 0


async def test_accept_of_a_follow_sent_to_someone_else_is_ignored(pair: Pair) -> None:
    ctx = pair.ctx(pair.a)
    await ensure_instance_actor(ctx)
    async with pair.a.sessionmaker() as session:
        from voisinage.federation.actors import resolve_handle

        dogwood = await resolve_handle(ctx, session, "@dogwood@b.test")
        await session.commit()
    async with write_session(pair.a.sessionmaker) as session:
        alder = await session.scalar(select(Actor).where(Actor.username == "alder", Actor.domain == ""))
        follow = await outbox.request_follow(session, ctx, alder, await session.get(Actor, dogwood.id))
        follow_uri = follow.uri
    accept = {"id": f"{B}/users/cedar#accepts/2", "type": "Accept", "actor": f"{B}/users/cedar",
              "object": follow_uri}  # cedar answers a Follow sent to dogwood
    assert await send(pair, accept) == 202
    from voisinage.federation.workers import drain

    await drain(pair.ctx(pair.a))  # only a.test's queues: dogwood's real Accept is not sent
    rows = await pair.a.rows(Follow, Follow.uri == follow_uri)
    assert [r.state for r in rows] == ["pending"]


async def test_delete_or_update_of_someone_elses_note_is_a_no_op(pair: Pair) -> None:
    assert await send(pair, create_note()) == 202
    await pair.drain()
    note_uri = f"{B}/users/cedar/statuses/1"
    update = {"id": f"{B}/users/dogwood#updates/1", "type": "Update", "actor": f"{B}/users/dogwood",
              "object": {**create_note()["object"], "content": "<p>forged</p>"}}
    delete = {"id": f"{B}/users/dogwood#deletes/1", "type": "Delete", "actor": f"{B}/users/dogwood",
              "object": note_uri}
    assert await send(pair, update, signer="dogwood") == 202
    assert await send(pair, delete, signer="dogwood") == 202
    await pair.drain()
    rows = await pair.a.rows(Post, Post.uri == note_uri)
    assert len(rows) == 1 and "bonjour" in rows[0].content


async def test_embedded_object_from_another_host_is_not_trusted(pair: Pair) -> None:
    before = await pair.a.count(Post)
    forged = create_note(note_id="https://c.test/users/eve/statuses/1", author="https://c.test/users/eve",
                         activity_id=f"{B}/users/cedar#create/9")
    assert await send(pair, forged) == 202
    announce = {"id": f"{B}/users/cedar#announce/1", "type": "Announce", "actor": f"{B}/users/cedar",
                "object": forged["object"], "to": [f"{A}/users/alder"]}
    assert await send(pair, announce) == 202
    sent = len(pair.network.sent)
    await pair.drain()
    assert not [s for s in pair.network.sent[sent:] if s.host == "c.test"]  # not a partner: not fetched
    assert await pair.a.count(Post) == before


async def test_note_attributed_to_another_host_is_refused(pair: Pair) -> None:
    before = await pair.a.count(Post)
    odd = create_note(author=f"{A}/users/alder")  # id on b.test, author on a.test
    assert await send(pair, odd) == 202
    await pair.drain()
    assert await pair.a.count(Post) == before
    items = await pair.a.rows(InboxItem)
    assert [i.state for i in items] == [FAILED]


async def test_lemmy_style_group_announce_of_a_create_is_stored(pair: Pair) -> None:
    create = create_note(note_id=f"{B}/users/cedar/statuses/77")
    create["object"]["audience"] = f"{B}/villages/south"
    create["object"]["to"] = [f"{B}/villages/south/followers"]
    announce = {"id": f"{B}/villages/south/statuses/78/activity", "type": "Announce",
                "actor": f"{B}/villages/south", "object": create, "to": [f"{B}/villages/south/followers"]}
    assert await send(pair, announce, signer="south") == 202
    await pair.drain()
    note = (await pair.a.rows(Post, Post.uri == f"{B}/users/cedar/statuses/77"))[0]
    boost = (await pair.a.rows(Post, Post.uri == announce["id"]))[0]
    assert boost.reblog_of_id == note.id and note.visibility == "public" and note.audience_id == boost.author_id


async def test_a_boosted_note_of_a_group_unknown_until_then_is_in_the_groups_audience(pair: Pair) -> None:
    """A boost of a village's own note, the village (a Group) fetched while storing it: the note is public
    in the village's audience, as when the village was known before (the known Groups are read before
    the author is fetched)."""
    south = f"{B}/villages/south"
    assert await pair.a.count(Actor, Actor.uri == south) == 0
    note = {"id": f"{south}/statuses/90", "type": "Note", "attributedTo": south, "content": "<p>Marché</p>",
            "to": [f"{south}/followers"]}
    announce = {"id": f"{B}/users/cedar/statuses/91/activity", "type": "Announce", "actor": f"{B}/users/cedar",
                "object": note, "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    assert await send(pair, announce) == 202
    await pair.drain()
    (village,) = await pair.a.rows(Actor, Actor.uri == south)
    (stored_note,) = await pair.a.rows(Post, Post.uri == note["id"])
    assert stored_note.visibility == "public" and stored_note.audience_id == village.id


async def test_activities_arriving_together_share_a_transaction_and_each_is_stored_once(pair: Pair) -> None:
    """Group commit: concurrent deliveries are inserted by fewer statements than requests; a repeat
    inside one batch is still one row."""
    import asyncio

    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    await send(pair, create_note(f"{B}/users/cedar/statuses/warm"))  # keys and actors known
    with recorded_statements(pair.a.app[ENGINE]) as seen:
        notes = [create_note(f"{B}/users/cedar/statuses/g{i % 20}") for i in range(24)]  # 4 repeats
        statuses = await asyncio.gather(*(send(pair, note) for note in notes))
    assert statuses == [202] * 24
    uris = [item.activity_uri for item in await pair.a.rows(InboxItem)]
    assert len(uris) == len(set(uris)) == 21  # the warm-up and 20 distinct activities
    # Transactions that stored items: on SQLite each begins with our BEGIN (and stores a row per
    # statement); PostgreSQL stores a batch with one INSERT sent alone.
    transactions: list[list[str]] = [[]]
    for statement in seen:
        if statement.startswith("BEGIN"):
            transactions.append([])
        transactions[-1].append(statement)
    storing = [t for t in transactions if any("INSERT INTO inbox_items" in s for s in t)]
    if pair.a.app[ENGINE].dialect.name == "postgresql":
        storing = [s for t in storing for s in t if "INSERT INTO inbox_items" in s]
    assert 1 <= len(storing) < 20, len(storing)


async def test_an_accepted_activity_marks_its_host_reachable_again(pair: Pair) -> None:
    """A partner marked unavailable (seven days of failed deliveries) that sends us an activity is
    reachable again. On PostgreSQL the row and the host's mark are one statement."""
    from voisinage.models.instance import Instance
    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    assert await send(pair, create_note(activity_id=f"{B}/first")) == 202  # cedar's key cached
    async with write_session(pair.a.sessionmaker) as session:
        b_test = await session.scalar(select(Instance).where(Instance.host == "b.test"))
        b_test.unavailable_since, b_test.failure_days = utcnow(), ["2026-11-20", "2026-11-21"]
    with recorded_statements(pair.a.app[ENGINE]) as seen:
        assert await send(pair, create_note(activity_id=f"{B}/second")) == 202
    b_test = (await pair.a.rows(Instance, Instance.host == "b.test"))[0]
    assert b_test.unavailable_since is None and b_test.failure_days == []
    assert await pair.a.count(InboxItem, InboxItem.activity_uri == f"{B}/second") == 1
    writes = [s for s in seen if not s.lstrip().upper().startswith(("SELECT", "BEGIN", "COMMIT", "ROLLBACK"))]
    if pair.a.app[ENGINE].dialect.name == "postgresql":
        assert len(writes) == 1 and "INSERT INTO inbox_items" in writes[0] and "UPDATE instances" in writes[0], writes
