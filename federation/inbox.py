"""POST /inbox, /users/{name}/inbox, /villages/{slug}/inbox: check a signed activity and store it.

The steps (STYLE.md flow (b), SECURITY.md "Inbox"), each refusal before any work of the next:
1. body over 1 MiB -> 413, before parsing;
2. bounded JSON parse (jsonguard) -> 400;
3. the keyId's host must be a partner -> else 401, before any key is used or fetched (the statement
   that checks it also reads the owner of a key cached while its host was a partner);
4. the key from `actors.public_key_for`; `signatures.verify_request` on the raw path (on failure the
   key is fetched again once, at most once a minute per key: the peer may have rotated it) -> 401;
5. the key's owner must be the activity's `actor` (fedify CVE-2025-54888) -> 401; the activity id
   must be on the signer's host (Misskey InboxProcessorService) -> 401;
6. a blocked or suspended actor -> 202 with nothing stored (the sender learns nothing);
7. an InboxItem insert; the unique activity uri makes a repeat a no-op -> 202.
The inbox worker processes the stored item later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import bindparam, select, update

from voisinage.models.actor import GROUP, Actor
from voisinage.models.base import utcnow
from voisinage.models.db import execute_alone, fast, read_session, retried_when_busy, write_session, writes_on_loop
from voisinage.models.ids import new_id
from voisinage.models.inbox_item import InboxItem
from voisinage.models.instance import Instance
from voisinage.models.queue import PENDING

from . import actors, jsonguard, signatures
from .context import FEDERATION, FederationContext
from .partners import host_of
from .transport import FetchError
from .vocab import first, get_id

log = logging.getLogger("voisinage.federation.inbox")

MAX_BODY = 1024 * 1024


class Refused(Exception):
    """A refusal with its HTTP status; the message is logged, the sender gets a short text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_capped(request: web.Request, cap: int = MAX_BODY) -> bytes:
    """The body, or 413 as soon as it is (or says it is) over `cap`."""
    if request.content_length is not None and request.content_length > cap:
        raise Refused(413, "body too large")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > cap:
            raise Refused(413, "body too large")
    return bytes(body)


def parse_activity(raw: bytes) -> dict[str, Any]:
    """The activity JSON, bounded; 400 when it is not an object with an id and an actor."""
    try:
        activity = jsonguard.parse_object(raw, max_bytes=MAX_BODY)
    except jsonguard.JsonRefused as exc:
        raise Refused(400, str(exc)) from None
    if not isinstance(activity.get("id"), str) or not get_id(first(activity.get("actor"))):
        raise Refused(400, "activity without id or actor")
    return activity


async def partner_signature(ctx: FederationContext, session: Any, headers: Any,
                            activity_uri: str) -> tuple[str, Any, Any]:
    """(keyId, facts, key): the signature's keyId if its host is a partner (compared exactly; else 401),
    and in the same statement what accepting reads next. `facts`: the cached key's owner with the
    columns of `actors.Signer` (read afresh: an admin may have just suspended it; `id` None
    when the key is not cached or its owner has another key now) and `known`, the id of the activity's
    row when it is stored already. `key`: the cached public key when its owner was found, else None."""
    try:
        key_id, _ = signatures.key_id_of(headers)
        host = host_of(key_id)
    except (signatures.SignatureError, ValueError) as exc:
        raise Refused(401, f"signature: {exc}") from None
    cached = None if ctx.is_local_url(key_id) else ctx.key_cache.get(key_id)
    facts = (await session.execute(_ACCEPT_FACTS, {"host": host, "owner": cached[0] if cached else None,
                                                   "uri": activity_uri[:512]})).first()
    if facts is None or not facts.partner or facts.blocked:
        raise Refused(401, "not a partner")
    found = cached is not None and facts.id is not None and facts.key_id == key_id
    return key_id, facts, cached[1] if found else None


# One statement for the three reads of an activity whose key is cached: the partner check of the key's
# host, the key's owner, and whether the activity is stored already.
_HOST, _OWNER, _ITEMS = Instance.__table__, Actor.__table__, InboxItem.__table__
_ACCEPT_FACTS = fast(
    select(_HOST.c.partner, _HOST.c.blocked, _OWNER.c.id, _OWNER.c.uri, _OWNER.c.domain,
           (_OWNER.c.domain == "").label("local"), _OWNER.c.key_id, _OWNER.c.suspended_at,
           select(_ITEMS.c.id).where(_ITEMS.c.activity_uri == bindparam("uri")).scalar_subquery().label("known"))
    .select_from(_HOST.outerjoin(_OWNER, _OWNER.c.id == bindparam("owner")))
    .where(_HOST.c.host == bindparam("host")))


async def verified_signer(ctx: FederationContext, session: Any, request: web.Request, key_id: str,
                          body: bytes) -> actors.Signer:
    """The actor whose key signed this request (`actors.verified_key_owner`: a key that fails is
    fetched again once, at most once a minute); 401 otherwise."""
    try:
        return await actors.verified_key_owner(ctx, session, key_id, request, body)
    except signatures.SignatureError as exc:
        raise Refused(401, f"signature: {exc}") from None
    except (actors.NotPartner, actors.ApParseError, actors.UnknownActor, FetchError) as exc:
        raise Refused(401, f"key {key_id[:200]}: {exc}") from None


def check_origin(activity: dict[str, Any], signer: actors.Signer) -> None:
    """The signer must be the activity's actor, and the activity id on the signer's host."""
    if get_id(first(activity.get("actor"))) != signer.uri:
        raise Refused(401, "the signing key does not belong to the activity's actor")
    try:
        same = host_of(str(activity["id"])) == host_of(signer.uri)
    except ValueError:
        same = False
    if not same:
        raise Refused(401, "activity id is not on the signer's host")


async def store(ctx: FederationContext, activity: dict[str, Any], signer: actors.Signer) -> bool:
    """Insert the InboxItem (False when it was already there); the signer's instance is reachable.

    Requests arriving together share one transaction (`StoreBatcher`): on SQLite, with one writer at a
    time, a busy inbox then commits many rows at once instead of queueing one transaction per request.
    """
    if ctx.inbox_batcher is None:
        ctx.inbox_batcher = StoreBatcher(ctx)
    return await ctx.inbox_batcher.store(activity, signer)


MAX_BATCH = 500  # rows per transaction: far below either database's limit of bound parameters


class StoreBatcher:
    """Group commit of received activities: while one batch is written, the next one gathers."""

    def __init__(self, ctx: FederationContext) -> None:
        self.ctx = ctx
        self.waiting: list[tuple[dict[str, Any], actors.Signer, asyncio.Future[bool]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def store(self, activity: dict[str, Any], signer: actors.Signer) -> bool:
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting.append((activity, signer, stored))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_all())
        return await asyncio.shield(stored)  # a request that goes away does not cancel the others' write

    async def _write_all(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                stored = await self._write(batch)
            except Exception as exc:  # the database failed: every request of the batch gets the error
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for activity, _, future in batch:
                if not future.done():
                    future.set_result(stored.pop(activity["id"][:512], False))

    async def _write(self, batch: list[tuple[dict[str, Any], actors.Signer, asyncio.Future[bool]]]) -> dict[str, bool]:
        """One transaction for the batch; {activity uri: True} for the rows this batch stored."""
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for activity, signer, _ in batch:
            uri = activity["id"][:512]
            rows.setdefault(uri, {"id": new_id(), "activity_uri": uri, "signer_uri": signer.uri, "body": activity,
                                  "state": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now})
        hosts = sorted({signer.domain for _, signer, _ in batch})
        if not writes_on_loop(self.ctx.sessionmaker):
            # PostgreSQL: the rows and their hosts' availability in one statement committed by itself, one
            # round trip (a transaction's BEGIN, INSERT, UPDATE and COMMIT were four)
            values = {f"{name}_{index}": row[name] for index, row in enumerate(rows.values()) for name in _STORED}
            return {uri: True for (uri,) in await execute_alone(self.ctx.sessionmaker, _store_many(len(rows)),
                                                                 {**values, "hosts": hosts})}
        async with write_session(self.ctx.sessionmaker) as session:
            # SQLite on the loop: a fast statement per row costs less than building the batch's one
            stored = {}
            for row in rows.values():
                if (await session.execute(_store_one(), row)).first() is not None:
                    stored[row["activity_uri"]] = True
            await session.execute(_AVAILABLE_AGAIN, {"hosts": hosts})
        return stored


_STORED = ("id", "activity_uri", "signer_uri", "body", "state", "attempts", "next_attempt_at", "created_at")


@functools.cache
def _store_one() -> Any:
    """One received activity's row unless its uri is stored already (SQLite's INSERT, built once)."""
    from sqlalchemy.dialects.sqlite import insert

    table = InboxItem.__table__
    return fast(insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in _STORED})
                .on_conflict_do_nothing(index_elements=["activity_uri"]).returning(table.c.activity_uri))


# A partner that sends us activities is reachable again.
_AVAILABLE_AGAIN = fast(update(Instance.__table__).where(
    Instance.__table__.c.host.in_(bindparam("hosts", expanding=True)), Instance.__table__.c.unavailable_since.is_not(None))
    .values(unavailable_since=None, failure_days=[]))


@functools.lru_cache(maxsize=64)
def _store_many(count: int) -> Any:
    """PostgreSQL: `count` received activities' rows, those whose uri is not stored yet, in one INSERT
    that also marks their signers' hosts (`hosts`) reachable again (`_AVAILABLE_AGAIN` as a CTE), sent
    alone. Built and compiled once per count: compiling the batch's statement anew was a tenth of the
    server's main thread under an inbox load. Parameters `{column}_{index}` and `hosts`."""
    from sqlalchemy.dialects.postgresql import insert

    table = InboxItem.__table__
    available_again = _AVAILABLE_AGAIN.cte("available_again")
    return fast(insert(table).values([{name: bindparam(f"{name}_{index}", type_=table.c[name].type) for name in _STORED}
                                      for index in range(count)])
                .on_conflict_do_nothing(index_elements=["activity_uri"]).returning(table.c.activity_uri)
                .add_cte(available_again), alone=True)


async def _is_known_item(session: Any, uri: str) -> bool:
    return (await session.execute(_KNOWN_ITEM, {"uri": uri[:512]})).first() is not None


_KNOWN_ITEM = fast(select(InboxItem.id).where(InboxItem.activity_uri == bindparam("uri")))


async def _check_and_store(ctx: FederationContext, request: web.Request) -> None:
    body = await read_capped(request)
    activity = parse_activity(body)
    await ensure_instance_actor(ctx)
    await retried_when_busy(lambda: _verify_and_store(ctx, request, body, activity))


async def _verify_and_store(ctx: FederationContext, request: web.Request, body: bytes,
                            activity: dict[str, Any]) -> None:
    # Usually the key is cached and verifies: one statement in a read session (on SQLite, on the event
    # loop's thread) reads all that accepting needs. Otherwise a deferred transaction, not write_session:
    # the key fetch makes the peer fetch our instance actor, which must not wait behind a write lock we
    # hold (SQLite).
    async with read_session(ctx.sessionmaker) as session:
        key_id, facts, key = await partner_signature(ctx, session, request.headers, activity["id"])
    signer = None
    if key is not None:
        with contextlib.suppress(signatures.SignatureError):  # the peer may have a new key: looked up below
            actors.check_request_signature(ctx, request, body, key)
            signer = facts
    if signer is not None:
        skip = _nothing_to_store(activity, signer, known=facts.known is not None)
    else:
        async with ctx.sessionmaker() as session:
            signer = await verified_signer(ctx, session, request, key_id, body)
            await session.commit()  # a fetched actor or key is kept even when the activity is refused
            skip = _nothing_to_store(activity, signer, known=await _is_known_item(session, activity["id"]))
    if not skip:
        await store(ctx, activity, signer)


def _nothing_to_store(activity: dict[str, Any], signer: actors.Signer, *, known: bool) -> bool:
    """Refuses an activity its signer may not send; True when it needs no row (a suspended or local
    signer, or an activity already received)."""
    check_origin(activity, signer)
    return signer.suspended_at is not None or signer.local or known


async def _check_recipient(ctx: FederationContext, request: web.Request) -> None:
    """A personal inbox must belong to one of our actors: else 404."""
    name = request.match_info.get("name")
    slug = request.match_info.get("slug")
    if name is None and slug is None:
        return
    if "\x00" in (slug or name or ""):  # no such name, and PostgreSQL refuses the character in a query
        raise Refused(404, "no such inbox")
    kind_clause = Actor.kind == GROUP if slug is not None else Actor.kind != GROUP
    async with read_session(ctx.sessionmaker) as session:
        found = await session.scalar(select(Actor.id).where(
            Actor.username == (slug or name), Actor.domain == "", kind_clause))
    if found is None:
        raise Refused(404, "no such inbox")


async def post_inbox(request: web.Request) -> web.Response:
    """The inbox handler for the shared and the personal inboxes."""
    ctx = request.app[FEDERATION]
    try:
        await _check_recipient(ctx, request)
        await _check_and_store(ctx, request)
    except Refused as exc:
        log.info("inbox refused (%d): %s", exc.status, exc)
        return web.json_response({"error": _public_reason(exc)}, status=exc.status)
    _wake(request.app)
    return web.Response(status=202)


def _public_reason(exc: Refused) -> str:
    return {401: "Request not signed by a permitted actor", 413: "Body too large",
            404: "Not found"}.get(exc.status, "Bad request")


def _wake(app: web.Application) -> None:
    from .workers import wake

    wake(app)


async def ensure_instance_actor(ctx: FederationContext) -> None:
    """See workers.ensure_instance_actor (imported late: workers imports this module's neighbours)."""
    from .workers import ensure_instance_actor as ensure

    await ensure(ctx)


def add_inbox_routes(app: web.Application) -> None:
    """The inbox routes: shared, instance actor, residents, villages."""
    app.router.add_post("/inbox", post_inbox)
    app.router.add_post("/actor/inbox", post_inbox)
    app.router.add_post("/users/{name}/inbox", post_inbox)
    app.router.add_post("/villages/{slug}/inbox", post_inbox)
