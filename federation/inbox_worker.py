"""The inbox worker: claim stored InboxItem rows, dispatch each (in its own transaction on PostgreSQL, in
its savepoint of a shared transaction on a SQLite file), mark it.

ApParseError (a document we cannot use) and other refusals fail the item for good; a failed fetch
(the origin is down) is retried with the delivery backoff. [microblog.pub incoming_activities;
Takahē InboxMessageStates]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from voisinage.models.actor import Actor
from voisinage.models.db import fast, load_fast_with, write_session, writers_waiting, writes_on_loop
from voisinage.models.events import savepoint
from voisinage.models.inbox_item import InboxItem
from voisinage.models.instance import Instance
from voisinage.models.queue import DONE, FAILED, LEASE, PENDING, claim_due

from . import retry
from .actors import ApParseError, NeedsFetch, NotPartner, UnknownActor, host_of_or_none
from .context import FederationContext
from .delivery import now_of
from .dispatch import InboxContext, dispatch
from .transport import FetchError

log = logging.getLogger("voisinage.federation.inbox_worker")

BATCH = 20


# On PostgreSQL this many items are handled at once, each after the earlier items of its batch it may
# depend on (`_depends_on`): an item is about twenty round trips, and one item at a time kept this
# process and PostgreSQL each waiting for the other. SQLite's writes run on the event loop's one
# connection: one at a time.
ITEMS_AT_ONCE = 4


async def claim_items(ctx: FederationContext, limit: int = BATCH, held: set[int] | None = None) -> list[Any]:
    """Claim due inbox items; returns their rows (`id`, `signer_uri`, `body`), in the order they arrived:
    what handling them reads of them (on PostgreSQL a statement is a round trip)."""
    async with write_session(ctx.sessionmaker) as session:
        rows = await claim_due(session, InboxItem, limit=limit, lease=LEASE, now=now_of(ctx),
                               columns=("signer_uri", "body"))
    if held is not None:
        held.update(row.id for row in rows)
    return rows


BUSY_TRIES = 4
# The documents one item may fetch between its tries (its author, the note it announces, a reply's
# parent, a few mentioned actors...); an item that wants more is handled with the network in its
# transaction, as a last resort.
MAX_FETCHES = 16


async def process_item(ctx: FederationContext, item: Any, *, fetches: Fetches | None = None) -> str:
    """Dispatch one claimed item (`claim_items`' row); returns its new state ("done", "failed" or
    "pending" for a retry).

    The item is handled without the network: a try that needs a document from a peer is rolled back,
    the document is fetched outside any transaction, and the item is tried again with it at hand, as
    many times as it needs documents. No transaction (on SQLite, no write lock: the inbox's requests
    wait for it) is held while a peer answers, and on SQLite every try holds the write lock from its
    start, which cannot fail for a write made in between. `fetches`: what an earlier try of the caller
    fetched or wants (`_process_together`)."""
    fetches = fetches or Fetches()
    immediate = writes_on_loop(ctx.sessionmaker)
    busy = 0
    while True:
        if fetches.wanted is not None:
            if len(fetches.done) >= MAX_FETCHES:
                return await _process_with_network(ctx, item)
            await fetches.fetch(ctx.transport)
        state = await _process_once(ctx, item, last=busy == BUSY_TRIES - 1, immediate=immediate or busy > 0,
                                    fetches=fetches)
        if state == _NEEDS_FETCH and fetches.wanted is None:
            return await _process_with_network(ctx, item)  # it wants to POST, not to fetch
        if state == _BUSY:
            busy += 1
            await asyncio.sleep(0.05 * busy)
        elif state != _NEEDS_FETCH:
            return state


async def _process_with_network(ctx: FederationContext, item: Any) -> str:
    """The last resort of an item that needs more of the network than fetches between tries: handled
    with it in a read transaction (SQLite: one that takes the write lock only when it writes), tried
    again holding the write lock when another write came in between."""
    for attempt in range(BUSY_TRIES):
        state = await _process_once(ctx, item, last=attempt == BUSY_TRIES - 1, immediate=attempt > 0)
        if state != _BUSY:
            return state
        await asyncio.sleep(0.05 * attempt)
    return PENDING


_BUSY = "busy"
_NEEDS_FETCH = "needs fetch"


def _request_key(url: str, options: dict[str, Any]) -> tuple[Any, ...]:
    """What tells two fetches apart: the URL and how it is asked for (not the signing callback, made
    anew at each call)."""
    return url, tuple(sorted((name, value) for name, value in options.items() if name != "sign"))


class Fetches:
    """The documents fetched for one item between its tries, and the one its last try wanted."""

    def __init__(self) -> None:
        self.done: dict[tuple[Any, ...], tuple[str, dict[str, Any]] | Exception] = {}
        self.wanted: tuple[str, dict[str, Any]] | None = None

    async def fetch(self, transport: Any) -> None:
        """Fetch the wanted document (outside any transaction); a failure is kept, to be raised where
        the item's handler asks for it again, and handled there as when the handler fetched."""
        assert self.wanted is not None
        url, options = self.wanted
        self.wanted = None
        try:
            self.done[_request_key(url, options)] = await transport.get_json(url, **options)
        except Exception as exc:  # raised again in the try, which tells a refusal from a retry
            self.done[_request_key(url, options)] = exc


class _Prefetched:
    """The transport of a try that must not wait on the network: it answers with the documents fetched
    before the try, and any other request raises NeedsFetch (a GET noting what to fetch)."""

    def __init__(self, transport: Any, fetches: Fetches) -> None:
        self._transport = transport
        self._fetches = fetches

    async def get_json(self, url: str, **options: Any) -> Any:
        known = self._fetches.done.get(_request_key(url, options))
        if known is None:
            self._fetches.wanted = (url, options)
            raise NeedsFetch(url)
        if isinstance(known, Exception):
            raise known
        return known

    async def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        raise NeedsFetch(url)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _process_once(ctx: FederationContext, item: Any, *, last: bool, immediate: bool = False,
                        fetches: Fetches | None = None) -> str:
    """One try of an item: with the network (`fetches` None) or with only what `fetches` holds."""
    if fetches is not None:
        fetches.wanted = None
        ctx = dataclasses.replace(ctx, transport=_Prefetched(ctx.transport, fetches))
    try:
        # A deferred transaction unless `immediate` (write_session): a try with the network, nothing of
        # ours should wait behind our write lock during a round trip (SQLite).
        opened = write_session(ctx.sessionmaker) if immediate else ctx.sessionmaker()
        async with opened as session:
            await _dispatch_item(ctx, session, item)
            await session.commit()
        return DONE
    except NeedsFetch:
        return _NEEDS_FETCH
    except (OperationalError, IntegrityError) as exc:
        # SQLite: the database changed under our snapshot. Both: another item, handled at the same time
        # (another signer's, or another worker's), inserted the same row first (an actor both mention).
        if not last:
            return _BUSY
        return await _finish(ctx, item.id, None, f"database busy: {exc}")
    except (ApParseError, NotPartner, UnknownActor, ValueError, KeyError, TypeError) as exc:
        log.info("inbox item %s refused: %s", item.id, exc)
        return await _finish(ctx, item.id, FAILED, f"{type(exc).__name__}: {exc}")
    except FetchError as exc:
        return await _finish(ctx, item.id, None, f"fetch failed: {exc}")


async def _dispatch_item(ctx: FederationContext, session: Any, item: Any) -> None:
    """Handle the claimed item's activity in `session` and mark the item done there."""
    signer, row = await load_fast_with(session, Actor, _SIGNER_AND_HOST,
                                       {"uri": item.signer_uri, "host": host_of_or_none(item.signer_uri) or ""})
    if signer is None:
        raise ApParseError("the signer is unknown")
    partner = bool(row.host_partner) and not row.host_blocked
    await dispatch(InboxContext(ctx, session, signer, signer_host_is_partner=partner), item.body)
    await session.execute(_ITEM_DONE, {"b_id": item.id})


# The signer, and whether its host is a partner not blocked: one statement (the note handler's partner
# check of its author, the signer, was a second).
_SIGNER_AND_HOST = fast(
    select(*Actor.__table__.c, Instance.__table__.c.partner.label("host_partner"),
           Instance.__table__.c.blocked.label("host_blocked"))
    .select_from(Actor.__table__.outerjoin(Instance.__table__, Instance.__table__.c.host == bindparam("host")))
    .where(Actor.__table__.c.uri == bindparam("uri")))


# An item's end, a plain statement built once (no ORM row per item).
_ITEM_DONE = fast(update(InboxItem.__table__).where(InboxItem.__table__.c.id == bindparam("b_id"))
                  .values(state=DONE, locked_until=None, attempts=InboxItem.__table__.c.attempts + 1))


async def _finish(ctx: FederationContext, item_id: int, state: str | None, error: str) -> str:
    """Mark an item failed, or (state None) schedule a retry after a backoff."""
    async with write_session(ctx.sessionmaker) as session:
        item = await session.get(InboxItem, item_id)
        if item is None:
            return DONE
        item.attempts += 1
        item.locked_until = None
        item.last_error = error[:1000]
        if state is None and item.attempts < retry.MAX_ATTEMPTS:
            item.next_attempt_at = now_of(ctx) + dt.timedelta(seconds=retry.backoff(item.attempts))
            return item.state
        item.state = FAILED
        return FAILED


async def process_due(ctx: FederationContext, limit: int = BATCH, held: set[int] | None = None) -> int:
    """Claim and process one batch of inbox items; returns how many were taken. On PostgreSQL up to
    ITEMS_AT_ONCE items at once, each after those it may depend on (`_process_at_once`); on a SQLite
    file, one after another in shared transactions (`_process_together`)."""
    rows = await claim_items(ctx, limit, held)
    if ctx.sessionmaker.kw["bind"].dialect.name == "postgresql":
        await _process_at_once(ctx, rows, held)
    elif writes_on_loop(ctx.sessionmaker):
        await _process_together(ctx, rows, held)
    else:
        await _process_in_order(ctx, rows, held)
    return len(rows)


class _Unhandled(Exception):
    """An item not handled because one it depends on raised: it is due again when its lease ends."""


async def _process_at_once(ctx: FederationContext, rows: list[Any], held: set[int] | None) -> None:
    """PostgreSQL: the items as tasks, ITEMS_AT_ONCE of them handled at a time, each once the earlier
    items it depends on are done. An item that raises (a bug) leaves those that depend on it unhandled,
    and is raised after the others have finished."""
    gate = asyncio.Semaphore(ITEMS_AT_ONCE)
    concerns = [_concerns(row.signer_uri, row.body) for row in rows]
    tasks: list[asyncio.Future[None]] = []
    for index, row in enumerate(rows):
        before = [tasks[earlier] for earlier in _depends_on(rows, concerns, index)]
        tasks.append(asyncio.ensure_future(_process_after(ctx, row, before, gate, held)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, _Unhandled):
            raise result


async def _process_after(ctx: FederationContext, item: Any, before: list[asyncio.Future[None]],
                         gate: asyncio.Semaphore, held: set[int] | None) -> None:
    if before:
        await asyncio.wait(before)  # waiting holds no place of the gate: an earlier item can always run
        if any(task.cancelled() or task.exception() is not None for task in before):
            if held is not None:  # no longer renewed: due again when its lease ends
                held.discard(item.id)
            raise _Unhandled(item.id)
    async with gate:
        await _process_in_order(ctx, [item], held)


# Activities about the relation of their actor to us, or to its followers: those of a signer are kept in
# order with all its others (an Announce of a village after our Follow of it was accepted).
_ABOUT_THE_ACTOR = frozenset({"Follow", "Accept", "Reject", "Block", "Move"})


def _concerns(signer_uri: str, activity: Any) -> frozenset[str] | None:
    """The ids an item's activity concerns: itself, its object, and its object's object and parent (an
    Undo's Like and the liked note, a reply's parent). None when it concerns its actor as a whole (an
    update or delete of the actor, a follow, accept or block, an Undo of one of them) or cannot be
    read: it then keeps its place among all its signer's items."""
    if not isinstance(activity, dict) or not isinstance(activity.get("id"), str):
        return None
    actors = {signer_uri, _id_of(activity.get("actor"))}
    found = {activity["id"]}
    inner = activity.get("object")
    if activity.get("type") in _ABOUT_THE_ACTOR or _id_of(inner) is None:
        return None
    found.add(_id_of(inner))
    if isinstance(inner, dict):
        if inner.get("type") in _ABOUT_THE_ACTOR or (activity.get("type") == "Undo" and "type" not in inner):
            return None
        found.update(filter(None, (_id_of(inner.get("object")), _id_of(inner.get("inReplyTo")))))
    elif activity.get("type") == "Undo":
        return None  # an Undo of an id: of what, it does not say
    return None if found & actors else frozenset(found)


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _depends_on(rows: list[Any], concerns: list[frozenset[str] | None], index: int) -> list[int]:
    """The earlier items of the batch that item `index` waits for: those that concern one of the ids it
    concerns, whoever signed them, and all its signer's earlier items when either concerns the signer as
    a whole."""
    mine, signer = concerns[index], rows[index].signer_uri
    return [earlier for earlier in range(index)
            if (rows[earlier].signer_uri == signer and (mine is None or concerns[earlier] is None))
            or (mine is not None and concerns[earlier] is not None and mine & concerns[earlier])]


async def _process_in_order(ctx: FederationContext, found: list[Any], held: set[int] | None,
                            **options: Any) -> None:
    for index, item in enumerate(found):
        try:
            await process_item(ctx, item, **options)
        except asyncio.CancelledError:
            raise  # shutdown: this item and the rest stay held so that Workers.release gives them back
        except BaseException:
            if held is not None:  # no longer renewed: they are due again when their lease ends
                held.difference_update(row.id for row in found[index:])
            raise
        if held is not None:
            held.discard(item.id)


# How long one write transaction of `_process_together` goes on adding items, unless another writer of
# the process comes to wait for SQLite's write lock (the inbox's requests storing what arrives, a resident
# posting): then it commits after the item at hand, and its next items go on after that writer.
TOGETHER_SECONDS = 0.02


async def _process_together(ctx: FederationContext, found: list[Any], held: set[int] | None) -> None:
    """SQLite: the items in arrival order, as many as `_time_to_commit` allows in one write transaction,
    each in its savepoint and without the network: one commit for them, and the pages several items
    change (the inbox rows, the posts' indexes, a reader's home) written once.
    An item that raises anything (it needs a fetch, it is refused, a bug) is rolled back to its
    savepoint; the items before it are committed, it is handled alone by `process_item` (told what it
    wanted to fetch), and the next transaction starts after it: the order of a signer's items holds."""
    loop = asyncio.get_running_loop()
    index = 0
    try:
        while index < len(found):
            first, alone = index, None
            fetches = Fetches()
            quick = dataclasses.replace(ctx, transport=_Prefetched(ctx.transport, fetches))
            async with write_session(ctx.sessionmaker) as session:
                began = loop.time()
                while index < len(found) and not _time_to_commit(ctx, loop.time() - began):
                    try:
                        async with savepoint(session):
                            await _dispatch_item(quick, session, found[index])
                    except Exception:
                        alone = found[index]
                        break
                    index += 1
                    # The items' statements run on the loop's thread without waiting: let what else is
                    # ready run (a request to parse, which may then wait for the write lock).
                    await asyncio.sleep(0)
            if held is not None:
                held.difference_update(row.id for row in found[first:index])
            if alone is not None:
                await _process_in_order(ctx, [alone], held, fetches=fetches)
                index += 1
    except asyncio.CancelledError:
        raise  # shutdown: the items left stay held so that Workers.release gives them back
    except BaseException:
        if held is not None:  # no longer renewed: they are due again when their lease ends
            held.difference_update(row.id for row in found[index:])
        raise


def _time_to_commit(ctx: FederationContext, seconds: float) -> bool:
    return seconds >= TOGETHER_SECONDS or writers_waiting(ctx.sessionmaker)


async def release(ctx: FederationContext, item_ids: set[int]) -> None:
    """Give back claimed items (shutdown)."""
    if not item_ids:
        return
    async with write_session(ctx.sessionmaker) as session:
        await session.execute(update(InboxItem).where(InboxItem.id.in_(list(item_ids))).values(locked_until=None))
