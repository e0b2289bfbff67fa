"""The inbox worker's batch: items that concern the same object, or their signer as a whole, in the order
they arrived; on PostgreSQL the others at once (`inbox_worker.ITEMS_AT_ONCE`), on SQLite one after
another, in shared write transactions."""

import asyncio
import dataclasses
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from voisinage.federation import inbox_worker
from voisinage.federation.context import FEDERATION
from voisinage.federation.transport import FetchError
from voisinage.models import db
from voisinage.models.actor import Actor
from voisinage.models.base import utcnow
from voisinage.models.events import Event, queue_event
from voisinage.models.ids import new_id
from voisinage.models.inbox_item import InboxItem
from voisinage.models.meta import MetaValue
from voisinage.models.queue import DONE, FAILED, PENDING
from voisinage.server.keys import EVENT_BUS

from ..rig.events import received

SIGNERS = {"a": 3, "b": 2, "c": 2, "d": 1}  # name on partner.test -> items it sent


async def _fill(rig: Any, bodies: list[tuple[str, dict[str, Any]]] | None = None) -> list[tuple[str, int]]:
    """Remote signers and their items, interleaved as they would arrive; [(signer uri, item id)]. By
    default each signer's items are Updates of one note of its (they depend on each other); `bodies`:
    (signer name, activity) instead."""
    order: list[tuple[str, int]] = []
    base = "https://partner.test"
    if bodies is None:
        bodies = [(name, {"id": f"{base}/users/{name}/activities/{turn}", "type": "Update",
                          "actor": f"{base}/users/{name}", "object": {"id": f"{base}/users/{name}/notes/0"}})
                  for turn in range(max(SIGNERS.values())) for name, count in SIGNERS.items() if turn < count]
    async with db.write_session(rig.sessionmaker) as session:
        for name in SIGNERS:
            session.add(Actor(username=name, domain="partner.test", uri=f"{base}/users/{name}",
                              inbox_uri=f"{base}/users/{name}/inbox", url=f"{base}/@{name}"))
        now = utcnow()
        for name, body in bodies:
            uri = f"{base}/users/{name}"
            item_id = new_id()
            session.add(InboxItem(id=item_id, activity_uri=body["id"], signer_uri=uri, body=body, state=PENDING,
                                  attempts=0, next_attempt_at=now, created_at=now))
            order.append((uri, item_id))
    return order


async def test_each_signers_items_in_order_and_several_signers_at_once_on_postgresql(rig, monkeypatch):
    order = await _fill(rig)
    events: list[tuple[str, str, str]] = []  # (start|end, signer, activity id)
    running = {"now": 0, "most": 0}

    async def recording_dispatch(ictx: Any, activity: dict[str, Any]) -> bool:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        events.append(("start", ictx.signer.uri, activity["id"]))
        await asyncio.sleep(0.02)  # a handler's round trips: the other lanes run meanwhile
        events.append(("end", ictx.signer.uri, activity["id"]))
        running["now"] -= 1
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", recording_dispatch)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)

    postgres = rig.sessionmaker.kw["bind"].dialect.name == "postgresql"
    assert running["most"] == (min(inbox_worker.ITEMS_AT_ONCE, len(SIGNERS)) if postgres else 1)
    for signer in {uri for uri, _ in order}:
        mine = [(kind, activity) for kind, who, activity in events if who == signer]
        sent = [f"{signer}/activities/{turn}" for turn in range(len(mine) // 2)]
        # one at a time, in the order they arrived
        assert mine == [(kind, activity) for activity in sent for kind in ("start", "end")]
    if not postgres:
        assert [activity for kind, _, activity in events if kind == "start"] == \
            [f"{uri}/activities/{sum(1 for u, i in order[:n] if u == uri)}" for n, (uri, _) in enumerate(order)]
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order)


P = "https://partner.test/users"


def _note(name: str, number: int, **more: Any) -> dict[str, Any]:
    return {"id": f"{P}/{name}/notes/{number}", "type": "Note", "attributedTo": f"{P}/{name}", **more}


# (signer, activity, the earlier items it must wait for)
DEPENDENT = [
    ("a", {"id": f"{P}/a/1", "type": "Create", "actor": f"{P}/a", "object": _note("a", 1)}, []),
    ("a", {"id": f"{P}/a/2", "type": "Create", "actor": f"{P}/a", "object": _note("a", 2)}, []),
    ("a", {"id": f"{P}/a/3", "type": "Update", "actor": f"{P}/a", "object": _note("a", 1)}, [0]),
    ("b", {"id": f"{P}/b/1", "type": "Like", "actor": f"{P}/b", "object": f"{P}/a/notes/2"}, [1]),
    ("a", {"id": f"{P}/a/4", "type": "Update", "actor": f"{P}/a", "object": {"id": f"{P}/a", "type": "Person"}},
     [0, 1, 2]),
    ("a", {"id": f"{P}/a/5", "type": "Create", "actor": f"{P}/a", "object": _note("a", 5)}, [4]),
    ("c", {"id": f"{P}/c/1", "type": "Create", "actor": f"{P}/c",
           "object": _note("c", 1, inReplyTo=f"{P}/a/notes/5")}, [5]),
    ("b", {"id": f"{P}/b/2", "type": "Undo", "actor": f"{P}/b",
           "object": {"id": f"{P}/b/1", "type": "Like", "object": f"{P}/a/notes/2"}}, [1, 3]),
    ("d", {"id": f"{P}/d/1", "type": "Create", "actor": f"{P}/d", "object": _note("d", 1)}, []),
]


async def test_items_wait_for_those_about_the_same_objects_or_their_signer(rig, monkeypatch):
    """An item is handled after the earlier items that concern one of its objects (an Update after its
    Create, a reply after its parent, an Undo after what it undoes, whoever signed them) and after all
    its signer's earlier items when either concerns the signer itself (its Update); on PostgreSQL the
    others run at the same time."""
    await _fill(rig, [(name, body) for name, body, _ in DEPENDENT])
    postgres = rig.sessionmaker.kw["bind"].dialect.name == "postgresql"
    events: list[tuple[str, str]] = []
    independent = {DEPENDENT[index][1]["id"] for index in (0, 1, 8)}  # the two Creates of a and d's
    together = asyncio.Event()

    async def recording_dispatch(ictx: Any, activity: dict[str, Any]) -> bool:
        events.append(("start", activity["id"]))
        if postgres and activity["id"] in independent:  # each waits until all three run
            if independent <= {started for kind, started in events if kind == "start"}:
                together.set()
            async with asyncio.timeout(10):
                await together.wait()
        await asyncio.sleep(0.01)
        events.append(("end", activity["id"]))
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", recording_dispatch)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(DEPENDENT)
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(DEPENDENT)
    ids = [body["id"] for _, body, _ in DEPENDENT]
    rows, concerns = _claimed(DEPENDENT)
    assert [inbox_worker._depends_on(rows, concerns, index) for index in range(len(rows))] == \
        [before for _, _, before in DEPENDENT]
    for index, (_, body, before) in enumerate(DEPENDENT):
        for earlier in before:
            assert events.index(("end", ids[earlier])) < events.index(("start", body["id"])), (earlier, index)
    if postgres:  # the three that depend on nothing ran at once
        assert together.is_set()
    else:
        assert [activity for kind, activity in events if kind == "start"] == ids


def _claimed(items: list[tuple[str, dict[str, Any], list[int]]]) -> tuple[list[Any], list[Any]]:
    rows = [dataclasses.make_dataclass("Row", ["signer_uri", "body"])(f"{P}/{name}", body) for name, body, _ in items]
    return rows, [inbox_worker._concerns(row.signer_uri, row.body) for row in rows]


def test_what_an_activity_concerns() -> None:
    concerns = inbox_worker._concerns
    like = {"id": f"{P}/b/1", "type": "Like", "actor": f"{P}/b", "object": f"{P}/a/notes/2"}
    assert concerns(f"{P}/b", like) == {f"{P}/b/1", f"{P}/a/notes/2"}
    undo_like = {"id": f"{P}/b/2", "type": "Undo", "actor": f"{P}/b", "object": like}
    assert concerns(f"{P}/b", undo_like) == {f"{P}/b/2", f"{P}/b/1", f"{P}/a/notes/2"}
    reply = {"id": f"{P}/c/1", "type": "Create", "actor": f"{P}/c", "object": _note("c", 1, inReplyTo=f"{P}/a/notes/5")}
    assert concerns(f"{P}/c", reply) == {f"{P}/c/1", f"{P}/c/notes/1", f"{P}/a/notes/5"}
    follow = {"id": f"{P}/b/3", "type": "Follow", "actor": f"{P}/b", "object": "https://a.test/users/alder"}
    for about_the_actor in (
        follow,
        {"id": f"{P}/b/4", "type": "Undo", "actor": f"{P}/b", "object": follow},
        {"id": f"{P}/b/5", "type": "Undo", "actor": f"{P}/b", "object": f"{P}/b/3"},  # undo of what?
        {"id": f"{P}/b/6", "type": "Accept", "actor": f"{P}/b", "object": "https://a.test/follows/1"},
        {"id": f"{P}/b/7", "type": "Delete", "actor": f"{P}/b", "object": f"{P}/b"},
        {"id": f"{P}/b/8", "type": "Update", "actor": f"{P}/b", "object": {"id": f"{P}/b", "type": "Service"}},
        {"id": f"{P}/b/9", "type": "Create", "actor": f"{P}/b"},  # no object
        {"type": "Create", "object": _note("b", 1)},  # no id
        ["not", "an", "activity"],
    ):
        assert concerns(f"{P}/b", about_the_actor) is None, about_the_actor


async def test_a_failing_lane_leaves_the_others_done(rig, monkeypatch):
    order = await _fill(rig)

    async def refusing_b(ictx: Any, activity: dict[str, Any]) -> bool:
        await asyncio.sleep(0.01)
        if ictx.signer.uri.endswith("/b"):
            raise ValueError("b's activities are unusable")
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", refusing_b)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)
    failed = {item.signer_uri for item in await rig.rows(InboxItem, InboxItem.state == FAILED)}
    assert failed == {"https://partner.test/users/b"}
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order) - SIGNERS["b"]
    assert await rig.count(InboxItem, InboxItem.locked_until.is_not(None)) == 0


async def test_a_row_inserted_first_by_another_item_is_tried_again(rig, monkeypatch):
    """Two lanes (or two workers) may insert the same row (an actor both items mention): the item that
    loses gets an IntegrityError, and is handled again rather than stopping the batch."""
    order = await _fill(rig)
    tries: dict[str, int] = {}

    async def losing_once(ictx: Any, activity: dict[str, Any]) -> bool:
        tries[activity["id"]] = tries.get(activity["id"], 0) + 1
        if tries[activity["id"]] == 1 and ictx.signer.uri.endswith("/a"):
            raise IntegrityError("INSERT INTO actors ...", {}, Exception("duplicate key value"))
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", losing_once)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order)
    assert {activity for activity, count in tries.items() if count == 2} == \
        {f"https://partner.test/users/a/activities/{turn}" for turn in range(SIGNERS["a"])}


async def test_an_unexpected_error_lets_go_of_the_lanes_rest(rig, monkeypatch):
    """A bug in a handler stops its lane (the loop logs it and goes on); the lane's items left are no
    longer held, so their lease ends and they are tried again, rather than renewed for ever."""
    order = await _fill(rig)

    async def broken_for_b(ictx: Any, activity: dict[str, Any]) -> bool:
        if ictx.signer.uri.endswith("/b"):
            raise RuntimeError("a bug")
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", broken_for_b)
    held: set[int] = set()
    with pytest.raises(RuntimeError):
        await inbox_worker.process_due(rig.app[FEDERATION], held=held)
    assert held == set()
    b_items = [item_id for uri, item_id in order if uri.endswith("/b")]
    pending = {item.id for item in await rig.rows(InboxItem, InboxItem.state == PENDING)}
    assert set(b_items) <= pending  # still to do, once their lease ends
    postgres = rig.sessionmaker.kw["bind"].dialect.name == "postgresql"
    if postgres:  # the other lanes went on to the end
        assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order) - SIGNERS["b"]


async def test_on_sqlite_items_share_a_transaction_and_one_that_raises_is_handled_alone(rig, monkeypatch):
    """SQLite: a batch's items in one write transaction, each in its savepoint. The item that raises is
    rolled back alone (its rows and its live events), the items before it are committed, it is tried
    again on its own (refused again: failed), and the items after it go on in a new transaction."""
    if not db.writes_on_loop(rig.sessionmaker):
        pytest.skip("PostgreSQL handles each item in its own transaction")
    order = await _fill(rig)
    broken = f"{order[4][0]}/activities/1"  # a's second item, after an item of each signer
    subscription = rig.app[EVENT_BUS].subscribe()
    sessions: list[tuple[str, Any]] = []  # (activity id, the session it ran in)
    waiting: list[int] = []

    async def writing(ictx: Any, activity: dict[str, Any]) -> bool:
        sessions.append((activity["id"], ictx.session))
        waiting.append(subscription.queue.qsize())  # events sent so far: those of committed items only
        ictx.session.add(MetaValue(key=f"{len(sessions)}", value=activity["id"]))
        await ictx.session.flush()
        await queue_event(ictx.session, Event("update", len(sessions)))
        if activity["id"] == broken:
            raise ValueError("unusable")
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", writing)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)

    ran = [activity for activity, _ in sessions]
    arrived = [f"{uri}/activities/{sum(1 for u, _ in order[:n] if u == uri)}" for n, (uri, _) in enumerate(order)]
    assert ran == arrived[:5] + [broken] + arrived[5:]  # tried again alone, then the rest in order
    shared = [id(session) for _, session in sessions]  # the sessions are kept: no id is reused
    # the items before and the broken one's first try; its try alone; the items after
    assert len(set(shared[:5])) == 1 and len(set(shared[6:])) == 1
    assert len({shared[0], shared[5], shared[6]}) == 3
    stored = {row.value for row in await rig.rows(MetaValue, MetaValue.value.like("https://partner.test/%"))}
    assert stored == {activity for activity in ran if activity != broken}
    assert {item.id for item in await rig.rows(InboxItem, InboxItem.state == FAILED)} == {order[4][1]}
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order) - 1
    got = await received(subscription, wait=0)
    assert got == [n for n in range(1, len(ran) + 1) if n not in (5, 6)]  # none of the broken item's
    assert waiting == [0] * 5 + [4] * (len(ran) - 5)


async def _nothing_held(rig: Any) -> bool:
    """Whether the worker holds no transaction: on SQLite another writer gets the write lock, on
    PostgreSQL no connection of the pool is in use."""
    if not db.writes_on_loop(rig.sessionmaker):
        return rig.sessionmaker.kw["bind"].pool.checkedout() == 0
    try:
        async with asyncio.timeout(2):
            async with db.write_session(rig.sessionmaker) as session:
                session.add(MetaValue(key=f"another writer {new_id()}", value="got in"))
    except TimeoutError:
        return False
    return True


async def test_an_item_fetches_what_it_needs_between_its_tries_with_nothing_held(rig, monkeypatch):
    """A handler that needs documents from a peer gets them from a fetch made outside any transaction
    (on SQLite the inbox's writers would wait behind the write lock for the peer's answer), each fetched
    once; a failed fetch is raised where the handler asks for it again."""
    order = await _fill(rig)
    first = order[0][1]
    async with db.write_session(rig.sessionmaker) as session:  # one item to handle
        for _, item_id in order[1:]:
            await session.delete(await session.get(InboxItem, item_id))
    asked: list[str] = []
    free: list[bool] = []

    class Peer:
        async def get_json(self, url: str, **options: Any) -> tuple[str, dict[str, Any]]:
            asked.append(url)
            free.append(await _nothing_held(rig))
            if url.endswith("/gone"):
                raise FetchError("404 from the peer")
            return url, {"id": url, "asked": options.get("accept", "default")}

    tries: list[list[str]] = []

    async def needing(ictx: Any, activity: dict[str, Any]) -> bool:
        got: list[str] = []
        tries.append(got)
        _, author = await ictx.ctx.transport.get_json("https://partner.test/users/author", sign=lambda *a: {})
        got.append(author["id"])
        try:
            await ictx.ctx.transport.get_json("https://partner.test/gone", sign=None)
        except FetchError as exc:
            got.append(str(exc))
        ictx.session.add(MetaValue(key="handled", value=author["id"]))
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", needing)
    ctx = dataclasses.replace(rig.app[FEDERATION], transport=Peer())
    assert await inbox_worker.process_due(ctx) == 1

    assert asked == ["https://partner.test/users/author", "https://partner.test/gone"]
    assert free == [True, True]
    assert tries == [[], ["https://partner.test/users/author"],
                     ["https://partner.test/users/author", "404 from the peer"]]
    assert [row.value for row in await rig.rows(MetaValue, MetaValue.key == "handled")] == \
        ["https://partner.test/users/author"]
    assert (await rig.rows(InboxItem, InboxItem.id == first))[0].state == DONE


async def test_on_sqlite_the_shared_transaction_ends_for_a_writer_that_waits(rig, monkeypatch):
    """SQLite: the inbox's requests store what arrives through the write lock: a writer that comes to
    wait for it gets it after the item at hand, not after the batch's whole transaction (it joins that
    transaction, whose commit carries both: `write_session`'s group commit), and the items after go on
    in a new transaction."""
    if not db.writes_on_loop(rig.sessionmaker):
        pytest.skip("PostgreSQL handles each item in its own transaction")
    order = await _fill(rig)
    ran: list[tuple[str, Any]] = []  # (activity id or "writer", its session)
    writer: list[asyncio.Task[None]] = []

    async def another_writer() -> None:
        async with db.write_session(rig.sessionmaker) as session:
            ran.append(("writer", session))
            session.add(MetaValue(key="another writer", value="got in"))

    async def handling(ictx: Any, activity: dict[str, Any]) -> bool:
        ran.append((activity["id"], ictx.session))
        if len(ran) == 2:  # a request comes in while the second item is handled
            writer.append(asyncio.create_task(another_writer()))
            await asyncio.sleep(0)
            assert db.writers_waiting(rig.sessionmaker)
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", handling)
    assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)
    await writer[0]
    assert not db.writers_waiting(rig.sessionmaker)
    names = [name for name, _ in ran]
    assert names.index("writer") == 2  # right after the item at hand
    sessions = [id(session) for _, session in ran]
    assert sessions[0] == sessions[1] == sessions[2]
    assert len(set(sessions[3:])) == 1 and sessions[3] not in sessions[:3]
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order)
    assert [row.value for row in await rig.rows(MetaValue, MetaValue.key == "another writer")] == ["got in"]


async def test_a_fetch_refused_between_tries_fails_the_item_as_in_its_handler(rig, monkeypatch):
    """A document the transport refuses outside a fetch error (a URL it cannot use) fails the item, as
    when the handler fetched it itself; nothing of the item is stored."""
    order = await _fill(rig)
    first = order[0][1]
    async with db.write_session(rig.sessionmaker) as session:
        for _, item_id in order[1:]:
            await session.delete(await session.get(InboxItem, item_id))

    class Refusing:
        async def get_json(self, url: str, **options: Any) -> Any:
            raise ValueError(f"unusable url {url}")

    async def needing(ictx: Any, activity: dict[str, Any]) -> bool:
        ictx.session.add(MetaValue(key="half done", value=activity["id"]))
        await ictx.session.flush()
        await ictx.ctx.transport.get_json("https://partner.test/users/author", sign=None)
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", needing)
    ctx = dataclasses.replace(rig.app[FEDERATION], transport=Refusing())
    assert await inbox_worker.process_due(ctx) == 1
    (item,) = await rig.rows(InboxItem, InboxItem.id == first)
    assert item.state == FAILED and "unusable url" in item.last_error
    assert await rig.count(MetaValue, MetaValue.key == "half done") == 0


async def test_a_claimed_item_is_not_read_again(rig, monkeypatch):
    """The claim returns what handling an item reads of it (its signer and activity): no statement
    reads the inbox's rows again (on PostgreSQL each would be a round trip)."""
    from voisinage.server.keys import ENGINE

    from ..rig.statements import recorded_statements

    order = await _fill(rig)
    handled: list[str] = []

    async def handling(ictx: Any, activity: dict[str, Any]) -> bool:
        handled.append(activity["id"])
        return True

    monkeypatch.setattr(inbox_worker, "dispatch", handling)
    with recorded_statements(rig.app[ENGINE]) as seen:
        assert await inbox_worker.process_due(rig.app[FEDERATION]) == len(order)
    assert sorted(handled) == sorted(f"{uri}/activities/{turn}" for uri, turn in
                                     ((uri, sum(1 for u, _ in order[:n] if u == uri)) for n, (uri, _) in enumerate(order)))
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "inbox_items" in s]
    assert reads == []
    assert await rig.count(InboxItem, InboxItem.state == DONE) == len(order)
