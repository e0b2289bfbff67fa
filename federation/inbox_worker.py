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

from voisinage.models.db import fast, write_session, writes_on_loop
from voisinage.models.events import savepoint
from voisinage.models.inbox_item import InboxItem
from voisinage.models.queue import DONE, FAILED, LEASE, PENDING, claim_due

from . import retry
from .actors import ApParseError, NeedsFetch, NotPartner, UnknownActor
from .context import FederationContext
from .delivery import now_of
from .dispatch import InboxContext, dispatch
from .handlers.common import get_actor
from .transport import FetchError

log = logging.getLogger("voisinage.federation.inbox_worker")

BATCH = 20


# On PostgreSQL, the items of this many signers are handled at once, each signer's in the order they
# arrived: an item is about twenty round trips, and one item at a time kept this process and PostgreSQL
# each waiting for the other. SQLite's writes run on the event loop's one connection: one at a time.
SIGNERS_AT_ONCE = 4


async def claim_items(ctx: FederationContext, limit: int = BATCH, held: set[int] | None = None) -> list[Any]:
    """Claim due inbox items; returns their rows (`id`, `signer_uri`), in the order they arrived."""
    async with write_session(ctx.sessionmaker) as session:
        rows = await claim_due(session, InboxItem, limit=limit, lease=LEASE, now=now_of(ctx), columns=("signer_uri",))
    if held is not None:
        held.update(row.id for row in rows)
    return rows


BUSY_TRIES = 4


async def process_item(ctx: FederationContext, item_id: int, *, tried_without_fetch: bool = False) -> str:
    """Dispatch one item; returns its new state ("done", "failed" or "pending" for a retry).

    SQLite refuses to turn a read transaction into a write one when another connection wrote in
    between ("database is locked" at once, not after the busy timeout), which a busy inbox makes
    common: such an item is tried again holding the write lock from the start, which cannot fail so,
    and only then waits for a backoff. `tried_without_fetch`: the caller already tried it with the
    write lock and no network (`_process_together`)."""
    if writes_on_loop(ctx.sessionmaker) and not tried_without_fetch:
        # SQLite: first with the write lock held from the start and no network (most items need no
        # fetch), so that the item's statements run on the event loop's thread; an item that needs a
        # fetch is rolled back and handled as below.
        state = await _process_once(ctx, item_id, last=False, immediate=True, fetch=False)
        if state not in (_BUSY, _NEEDS_FETCH):
            return state
    for attempt in range(BUSY_TRIES):
        state = await _process_once(ctx, item_id, last=attempt == BUSY_TRIES - 1, immediate=attempt > 0)
        if state != _BUSY:
            return state
        await asyncio.sleep(0.05 * attempt)
    return PENDING


_BUSY = "busy"
_NEEDS_FETCH = "needs fetch"


class _NoFetch:
    """The transport of a try that must not wait on the network: every request raises NeedsFetch."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    async def get_json(self, url: str, *args: Any, **kwargs: Any) -> Any:
        raise NeedsFetch(url)

    async def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        raise NeedsFetch(url)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _process_once(ctx: FederationContext, item_id: int, *, last: bool, immediate: bool = False,
                        fetch: bool = True) -> str:
    if not fetch:
        ctx = dataclasses.replace(ctx, transport=_NoFetch(ctx.transport))
    try:
        # First a deferred transaction (not write_session): handlers may fetch from peers, and nothing
        # of ours should wait behind our write lock during a round trip (SQLite). `immediate` (a retry
        # after a conflict) takes the write lock first: most items need no fetch at all.
        opened = write_session(ctx.sessionmaker) if immediate else ctx.sessionmaker()
        async with opened as session:
            await _dispatch_item(ctx, session, item_id)
            await session.commit()
        return DONE
    except NeedsFetch:
        return _NEEDS_FETCH
    except (OperationalError, IntegrityError) as exc:
        # SQLite: the database changed under our snapshot. Both: another item, handled at the same time
        # (another signer's, or another worker's), inserted the same row first (an actor both mention).
        if not last:
            return _BUSY
        return await _finish(ctx, item_id, None, f"database busy: {exc}")
    except (ApParseError, NotPartner, UnknownActor, ValueError, KeyError, TypeError) as exc:
        log.info("inbox item %s refused: %s", item_id, exc)
        return await _finish(ctx, item_id, FAILED, f"{type(exc).__name__}: {exc}")
    except FetchError as exc:
        return await _finish(ctx, item_id, None, f"fetch failed: {exc}")


async def _dispatch_item(ctx: FederationContext, session: Any, item_id: int) -> None:
    """Handle the item's activity in `session` and mark the item done there (a gone item: nothing)."""
    item = (await session.execute(_ITEM, {"id": item_id})).first()
    if item is None:
        return
    signer = await get_actor(session, item.signer_uri)
    if signer is None:
        raise ApParseError("the signer is unknown")
    await dispatch(InboxContext(ctx, session, signer), item.body)
    await session.execute(_ITEM_DONE, {"b_id": item_id})


# An item's signer and activity, and its end, as plain statements built once (no ORM row per item).
_ITEM = fast(select(InboxItem.signer_uri, InboxItem.body).where(InboxItem.id == bindparam("id")))
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
    """Claim and process one batch of inbox items; returns how many were taken. Each signer's items are
    handled in the order they arrived; on PostgreSQL, those of up to SIGNERS_AT_ONCE signers at once;
    on a SQLite file, one after another in shared transactions (`_process_together`)."""
    rows = await claim_items(ctx, limit, held)
    if writes_on_loop(ctx.sessionmaker):
        await _process_together(ctx, [row.id for row in rows], held)
        return len(rows)
    if ctx.sessionmaker.kw["bind"].dialect.name != "postgresql":
        await _process_in_order(ctx, [row.id for row in rows], held)
        return len(rows)
    by_signer: dict[str, list[int]] = {}
    for row in rows:
        by_signer.setdefault(row.signer_uri, []).append(row.id)
    signers = list(by_signer.values())
    lanes = [[item_id for ids in signers[lane::SIGNERS_AT_ONCE] for item_id in ids] for lane in range(SIGNERS_AT_ONCE)]
    results = await asyncio.gather(*(_process_in_order(ctx, lane, held) for lane in lanes if lane),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result  # after the other lanes have finished theirs
    return len(rows)


async def _process_in_order(ctx: FederationContext, found: list[int], held: set[int] | None,
                            **options: Any) -> None:
    for index, item_id in enumerate(found):
        try:
            await process_item(ctx, item_id, **options)
        except asyncio.CancelledError:
            raise  # shutdown: this item and the rest stay held so that Workers.release gives them back
        except BaseException:
            if held is not None:  # no longer renewed: they are due again when their lease ends
                held.difference_update(found[index:])
            raise
        if held is not None:
            held.discard(item_id)


# How long one write transaction of `_process_together` goes on adding items: the API's writers wait
# for SQLite's write lock meanwhile.
TOGETHER_SECONDS = 0.02


async def _process_together(ctx: FederationContext, found: list[int], held: set[int] | None) -> None:
    """SQLite: the items in arrival order, as many as TOGETHER_SECONDS allows in one write transaction,
    each in its savepoint and without the network: one commit for them, and the pages several items
    change (the inbox rows, the posts' indexes, a reader's home) written once.
    An item that raises anything (it needs a fetch, it is refused, a bug) is rolled back to its
    savepoint; the items before it are committed, it is handled alone by `process_item`, and the next
    transaction starts after it: the order of a signer's items holds."""
    quick = dataclasses.replace(ctx, transport=_NoFetch(ctx.transport))
    loop = asyncio.get_running_loop()
    index = 0
    try:
        while index < len(found):
            first, alone = index, None
            async with write_session(ctx.sessionmaker) as session:
                began = loop.time()
                while index < len(found) and loop.time() - began < TOGETHER_SECONDS:
                    try:
                        async with savepoint(session):
                            await _dispatch_item(quick, session, found[index])
                    except Exception:
                        alone = found[index]
                        break
                    index += 1
            if held is not None:
                held.difference_update(found[first:index])
            if alone is not None:
                await _process_in_order(ctx, [alone], held, tried_without_fetch=True)
                index += 1
    except asyncio.CancelledError:
        raise  # shutdown: the items left stay held so that Workers.release gives them back
    except BaseException:
        if held is not None:  # no longer renewed: they are due again when their lease ends
            held.difference_update(found[index:])
        raise


async def release(ctx: FederationContext, item_ids: set[int]) -> None:
    """Give back claimed items (shutdown)."""
    if not item_ids:
        return
    async with write_session(ctx.sessionmaker) as session:
        await session.execute(update(InboxItem).where(InboxItem.id.in_(list(item_ids))).values(locked_until=None))
