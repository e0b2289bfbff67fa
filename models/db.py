"""Engines, sessions and migrations.

SQLite runs in WAL mode, so the CLI can write while the server runs; write transactions start with
BEGIN IMMEDIATE (`write_session`) so that two writers queue instead of failing on a lock upgrade. On a
SQLite file, `write_session` and `read_session` (for read-only requests) are `LoopSession`s, whose
statements run on the event loop's thread rather than aiosqlite's, and statements marked `fast` (a
timeline page's, the plain-column reads of posting, delivery and the inbox) go to sqlite3 directly. On
PostgreSQL both are ordinary sessions, whose fast statements go to asyncpg directly (models/pg_fast.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import logging
import re
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached

from . import ids

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


IDLE_PING_SECONDS = 2.0  # a pooled connection idle longer than this is checked before it is used
_IDLE_SINCE = "voisinage_idle_since"


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's `pool_pre_ping` for the connections that sat in the pool a while only.

    On asyncpg its check is three round trips at every checkout (BEGIN, a ping, ROLLBACK: for
    pgbouncer's sake), about 0.65 ms of this process's CPU, more than a timeline page's statements. A
    connection given back moments ago is alive; one idle for longer may have been closed by a restart
    of PostgreSQL or a proxy's idle timeout, and is checked first and replaced when dead (the pool tries
    another on `DisconnectionError`). A connection that dies while in use fails its statement, and
    SQLAlchemy (or the fast path, models/pg_fast.py) then drops the pool's connections."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    @event.listens_for(sync_engine, "checkin")
    def idle_from_now(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def check_if_idle_long(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < IDLE_PING_SECONDS:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except sync_engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection is gone: {error}") from error


def _tune_sqlite(engine: AsyncEngine | Engine, *pragmas: str) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions cannot BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                       "temp_store=MEMORY", "cache_size=-16000", *pragmas):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("sqlite_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # "database is locked" comes as SQLAlchemy's error
            return
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite3.Connection):  # a loop reader: sqlite3 directly (70 us less)
            dbapi_connection.execute("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN")


def dialect_insert(session: Any) -> Any:
    """The `insert` of the session's dialect (the one with ON CONFLICT), imported when first used: a
    SQLite instance never loads the PostgreSQL dialect (27 ms and some memory at start-up)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_specific
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_specific
    return dialect_specific


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of the engine; on PostgreSQL they run `fast` statements on asyncpg (models/pg_fast.py)."""
    if engine.dialect.name == "postgresql":
        from .pg_fast import PgSession

        return async_sessionmaker(engine, expire_on_commit=False, class_=PgSession)
    return async_sessionmaker(engine, expire_on_commit=False)


class WriterLock(asyncio.Lock):
    """asyncio's lock (first come, first served), knowing how many writers wait for it, and holding the
    write transaction its last holder left open for them (`write_session`'s group commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0
        self.group: _Group | None = None

    async def acquire(self) -> Literal[True]:
        self.waiting += 1
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1
            if self.group is not None and not self.locked() and not self.waiting:
                # the writer the transaction was left to gave up waiting (cancelled), and no other
                # waits: commit it for the writers that wait for that commit
                group, self.group = self.group, None
                group.commit(None)


def writers_waiting(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Whether other writers of this process wait for SQLite's write lock (always False on PostgreSQL):
    a long transaction made of small independent parts (the inbox worker's) may end early for them."""
    lock = _writer_lock(sessionmaker)
    return lock is not None and lock.waiting > 0


def _writer_lock(sessionmaker: async_sessionmaker[AsyncSession]) -> WriterLock | None:
    """On SQLite, the lock this process's writers queue on (None on PostgreSQL).

    SQLite has one writer at a time; a writer that finds the database locked sleeps in its busy handler
    for up to 100 ms between tries, however soon the lock is free. Queuing this process's writers on an
    asyncio lock wakes the next one the moment the previous one commits; the busy timeout remains for
    other processes (the command line)."""
    engine = sessionmaker.kw.get("bind")
    if engine is None or engine.dialect.name != "sqlite":
        return None
    locks = engine.sync_engine.__dict__.setdefault("_voisinage_writer_locks", weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    lock = locks.get(loop)
    if lock is None:
        lock = locks[loop] = WriterLock()  # one per event loop: an asyncio lock belongs to one
    return lock


BUSY_SECONDS = 30.0  # how long a writer waits for another process's write lock

_T = TypeVar("_T")


async def retried_when_busy(work: Callable[[], Awaitable[_T]], tries: int = 3) -> _T:
    """`work()`, done again after a short sleep when SQLite refuses its write because another writer got
    in between its read and its write (a deferred transaction, one that may wait on the network before
    writing, cannot then take the write lock); the last refusal is raised."""
    for attempt in range(tries):
        try:
            return await work()
        except OperationalError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def write_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction takes SQLite's write lock at once; commits on success. Do not open
    one inside another: on SQLite the inner one would wait for the outer one forever.

    On a SQLite file it is a `LoopSession`: this process's writers already queue on an asyncio lock, so
    once the write lock is taken nothing in the transaction can wait, and its statements run on the
    event loop's thread. Taking the lock does not block the loop: while another process (the command
    line) writes, the writer sleeps and tries again, for up to BUSY_SECONDS. Writers that queue
    together share a transaction and its commit (`_Group`); each returns once it is committed, and
    `commit()` inside one only flushes."""
    lock = _writer_lock(sessionmaker)
    engine = sessionmaker.kw.get("bind")
    writer = loop_engine(engine, "writer") if lock is not None else None
    if writer is None:
        async with lock if lock is not None else contextlib.nullcontext(), sessionmaker() as session:
            await session.connection(execution_options={"sqlite_write": True})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        return
    await lock.acquire()
    group, lock.group = lock.group, None
    if group is None:
        opened = LoopSession(writer, sessionmaker.kw.get("info"))
        opened.grouped = True
        try:
            await opened.begin_immediate()
        except BaseException:
            opened.sync_session.close()
            lock.release()
            raise
        group = _Group(opened)
    member: _Member | None = None
    try:
        member = _Member(group)
        yield group.session  # type: ignore[misc]  # the awaitable interface of an AsyncSession
        member.done()
    except BaseException as exc:
        if member is not None and member.roll_back():  # its own work undone, the others' kept
            await group.finish(lock, waits=False)
        else:  # the group's first writer (nobody joined it yet), or its SAVEPOINT failed
            group.abort(exc)
            lock.release()
        raise
    await group.finish(lock, waits=True)


GROUP_MOST = 16  # writers whose work one commit may carry


class _Group:
    """A SQLite write transaction shared by this process's writers that queue for the write lock
    together (group commit). They run one after another, each alone, as before; the one that finds
    nobody waiting commits for all, and each leaves `write_session` once that commit is made. The
    commit writes each page the writers touched once (the posts' indexes, a village's row, the pages
    of home rows they share), where each wrote them again, and SQLite's BEGIN and COMMIT are paid once.
    Every writer but the first works in a SAVEPOINT: its failure undoes its own work only."""

    def __init__(self, session: LoopSession) -> None:
        self.session = session
        self.members = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def finish(self, lock: WriterLock, *, waits: bool) -> None:
        """Holding the lock: leave the transaction to the next writer if one waits, else commit it;
        with `waits`, return once it is committed (raise what the commit raised)."""
        if self.members < GROUP_MOST:
            try:
                await asyncio.sleep(0)  # the writers ready to write queue behind us meanwhile
            except BaseException:  # cancelled: still the one to commit
                self.commit(lock)
                raise
            if lock.waiting:
                lock.group = self
                lock.release()
                if waits:
                    await asyncio.shield(self.committed)
                return
        self.commit(lock)
        if waits:
            self.committed.result()

    def commit(self, lock: WriterLock | None) -> None:
        """Commit and close, then release the lock; a failure is given to every waiting writer."""
        session = self.session.sync_session
        try:
            _refresh_expired(session)
            session.commit()
        except Exception as exc:
            self.abort(exc)
        else:
            self.committed.set_result(None)
            session.close()
        finally:
            if lock is not None:
                lock.release()

    def abort(self, exc: BaseException) -> None:
        """Roll back and close; the writers waiting for the commit raise `exc`."""
        session = self.session.sync_session
        with contextlib.suppress(Exception):
            session.rollback()
        session.close()
        if not self.committed.done():
            self.committed.set_exception(exc)
            self.committed.exception()  # retrieved: each waiting writer raises it itself


def _refresh_expired(session: Session) -> None:
    """Load again the objects a writer of the group expired (a SAVEPOINT rolled back, `expire_all`):
    another writer holding one would find it empty and detached once the session is closed."""
    for instance in list(session.identity_map.values()):
        if inspect(instance).expired_attributes:
            with contextlib.suppress(Exception):
                session.refresh(instance)


class _Member:
    """One writer's part of a group's transaction: a SAVEPOINT unless it is the first, and the live
    events it queued (dropped with its work)."""

    def __init__(self, group: _Group) -> None:
        from .events import pending_events

        self.group = group
        session = group.session.sync_session
        self.events = pending_events(group.session)
        self.mark = len(self.events)
        self.savepoint = session.begin_nested() if group.members else None
        group.members += 1

    def done(self) -> None:
        if self.savepoint is None:
            self.group.session.sync_session.flush()
        else:
            self.savepoint.commit()

    def roll_back(self) -> bool:
        """Undo this writer's work alone; False when it cannot (the first writer has no SAVEPOINT)."""
        if self.savepoint is None:
            return False
        try:
            self.savepoint.rollback()
        except Exception:
            return False
        del self.events[self.mark:]
        return True


class _LoopConnection:
    """A synchronous connection or session behind the awaitable methods our code calls."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def _fast_connection(self) -> Connection:
        return self._connection  # type: ignore[no-any-return]

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        if not kwargs and statement.get_execution_options().get(FAST):
            rows = _fast_rows(self._fast_connection(), statement, parameters or {})
            if rows is not None:
                return rows
        return self._connection.execute(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        if statement.get_execution_options().get(FAST):
            return (await self.execute(statement, parameters, **kwargs)).scalars()
        return self._connection.scalars(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        if statement.get_execution_options().get(FAST):
            row = (await self.execute(statement, parameters, **kwargs)).first()
            return None if row is None else row[0]
        return self._connection.scalar(statement, parameters, **kwargs)


class LoopSession(_LoopConnection):
    """An ORM session on a SQLite file whose statements run on the event loop's own thread, with the
    awaitable methods of an AsyncSession.

    Through aiosqlite every statement is handed to the connection's thread and back four times
    (cursor, execute, fetch, close), which costs more than most of our statements take, and a writer
    holds SQLite's one write lock all that while. Run inline, a statement costs only its own time. This
    is safe only where no statement can wait: readers in WAL mode never wait for a writer (the reader's
    connection is `query_only`), and a writer never waits once it holds the write lock
    (`write_session`)."""

    def __init__(self, engine: Engine, info: dict[str, Any] | None = None) -> None:
        self.sync_session = Session(engine, expire_on_commit=False, info=dict(info or {}))
        super().__init__(self.sync_session)
        self.bind = engine
        self._transaction: Any = None  # the session's transaction when `_opened` was asked of it
        self._opened: Connection | None = None
        self.grouped = False  # a `write_session`'s: its commit is the group's

    @property
    def info(self) -> dict[str, Any]:
        return self.sync_session.info

    async def __aenter__(self) -> LoopSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sync_session.close()

    async def begin_immediate(self) -> None:
        """Take the write lock (the engine's connections begin IMMEDIATE and never wait for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_SECONDS
        delay = 0.001
        while True:
            try:
                self.sync_session.connection()
                return
            except OperationalError as exc:
                if "locked" not in str(exc) or loop.time() > deadline:
                    raise
                self.sync_session.rollback()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _fast_connection(self) -> Connection:
        """The session's connection, as its own execute would use it (after an autoflush). Asked of
        the session once per transaction: `Session.connection()` costs more than a short statement."""
        session = self.sync_session
        session.flush()
        transaction = session.get_transaction()
        connection = self._opened
        if connection is None or transaction is None or transaction is not self._transaction:
            connection = self._opened = session.connection()  # begins a transaction if there was none
            self._transaction = session.get_transaction()
        return connection

    async def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(entity, ident, **kwargs)

    async def connection(self, **kwargs: Any) -> _LoopConnection:
        return _LoopConnection(self.sync_session.connection(**kwargs))

    def add(self, instance: Any) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Any) -> None:
        self.sync_session.add_all(instances)

    async def delete(self, instance: Any) -> None:
        self.sync_session.delete(instance)

    async def flush(self, objects: Any = None) -> None:
        self.sync_session.flush(objects)

    async def refresh(self, instance: Any, attribute_names: Any = None) -> None:
        self.sync_session.refresh(instance, attribute_names)

    def is_modified(self, instance: Any) -> bool:
        return self.sync_session.is_modified(instance)

    def expire_all(self) -> None:
        self.sync_session.expire_all()

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[Any]:
        with self.sync_session.begin_nested() as savepoint:
            yield savepoint

    async def commit(self) -> None:
        if self.grouped:  # a writer's work is committed with its group's, by `write_session`
            self.sync_session.flush()
            return
        self.sync_session.commit()

    async def rollback(self) -> None:
        if self.grouped:  # it would undo the other writers' work too
            raise RuntimeError("a write_session is rolled back by raising out of it")
        self.sync_session.rollback()

    async def close(self) -> None:
        if not self.grouped:  # a write_session's is closed by its group, after the commit
            self.sync_session.close()


# --- the fast read path --------------------------------------------------------------------------

FAST = "voisinage_fast"


FAST_IN_TRANSACTION = "voisinage_fast_in_transaction"
FAST_ALONE = "voisinage_fast_alone"


def fast(statement: Any, *, in_transaction: bool = False, alone: bool = False) -> Any:
    """Mark a Core statement built once with bind parameters and run often (a timeline page's SELECTs, a
    queue's claim, a fan-out's INSERT of many rows): on a SQLite loop connection it is run through
    sqlite3 directly (`_fast_rows`), which costs a fifth of what SQLAlchemy's execution and result
    layers take for it; on PostgreSQL through asyncpg (models/pg_fast.py); elsewhere it runs as usual.
    Every value must be a bind parameter or a literal of the statement: column defaults are not applied.
    `in_transaction`: a SELECT whose effect belongs to the transaction (`pg_notify`, sent at commit),
    which PostgreSQL's fast path runs only inside it, as it runs writes. `alone`: a write that is a
    transaction by itself, for `execute_alone`."""
    return statement.execution_options(**{FAST: True, FAST_IN_TRANSACTION: in_transaction, FAST_ALONE: alone})


async def execute_alone(sessionmaker: async_sessionmaker[AsyncSession], statement: Any,
                        parameters: dict[str, Any]) -> list[Any]:
    """The rows of one write marked `fast(..., alone=True)`, committed by itself: on PostgreSQL sent on
    a pooled connection outside any transaction (one round trip, where BEGIN, the statement and COMMIT
    were three), elsewhere in a write session."""
    engine = sessionmaker.kw.get("bind")
    if engine is not None and engine.dialect.name == "postgresql":
        from .pg_fast import run_fast

        async with engine.connect() as connection:
            rows = await run_fast(connection.sync_connection, statement, parameters, alone=True)
        if rows is not None:
            return list(rows)
    async with write_session(sessionmaker) as session:  # also where the statement cannot be sent alone
        return list((await session.execute(statement, parameters)).all())


def fast_insert(model: Any, **values: Any) -> Any:
    """A fast INSERT into `model`'s table of these values: bind parameters (given the column's type
    here) or literals; run it with one parameter set, or a list of them for an executemany."""
    table = model.__table__
    return fast(insert(table).values({
        name: bindparam(value.key, type_=table.c[name].type) if isinstance(value, BindParameter) else value
        for name, value in values.items()}))


@functools.cache
def _insert_of_all_columns(model: Any) -> Any:
    return fast_insert(model, **{column.name: bindparam(f"c_{column.name}") for column in model.__table__.c})


@functools.cache
def _column_defaults(model: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """A model's scalar column defaults (None for a nullable column without one), and the columns a
    new row must be given (no default, or a callable one: an id, a timestamp)."""
    defaults: dict[str, Any] = {}
    required = set()
    for column in model.__table__.c:
        if column.default is not None and column.default.is_scalar:
            defaults[column.name] = column.default.arg
        elif column.default is None and column.nullable:
            defaults[column.name] = None
        else:
            required.add(column.name)
    return defaults, frozenset(required)


def _full_row(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    defaults, required = _column_defaults(model)
    missing = required - values.keys()
    if missing:
        raise TypeError(f"a new {model.__name__} needs {', '.join(sorted(missing))}")
    return {**defaults, **values}


async def insert_new(session: Any, model: Any, **values: Any) -> Any:
    """Insert one row of `model` at once (a fast Core INSERT: no unit of work, no flush) and return a
    transient instance with the row's values (the model's attributes are named as its columns). It is
    not in the session: changing it saves nothing."""
    row = _full_row(model, values)
    await session.execute(_insert_of_all_columns(model), {f"c_{name}": value for name, value in row.items()})
    return _transient(model, row)


def new_row_column(model: Any, name: str) -> Any:
    """The bind parameter of column `name` in `insert_unless`'s statement (to write its condition)."""
    return bindparam(f"c_{name}", type_=model.__table__.c[name].type)


def insert_unless(model: Any, existing: Any) -> Any:
    """A fast INSERT of one row of `model` that inserts nothing when `existing` (a SELECT written with
    `new_row_column`'s parameters) finds a row; run by `insert_new_unless`. One statement where a read
    and then an insert would be two round trips to PostgreSQL."""
    table = model.__table__
    row = select(*(new_row_column(model, column.name) for column in table.c)).where(~existing.exists())
    return fast(insert(table).from_select([column.name for column in table.c], row).returning(table.c.id))


async def insert_new_unless(session: Any, statement: Any, model: Any, **values: Any) -> Any:
    """`insert_new` through an `insert_unless` statement: the transient instance, or None when a row
    of the statement's condition was there (and nothing was inserted)."""
    row = _full_row(model, values)
    inserted = (await session.execute(statement, {f"c_{name}": value for name, value in row.items()})).first()
    return _transient(model, row) if inserted is not None else None


def _transient(model: Any, row: dict[str, Any]) -> Any:
    """An instance of `model` holding `row` as loaded values (as the ORM's loading does: 2 us where the
    constructor's attribute events take 45 for a Post)."""
    mapper = model.__mapper__
    if not mapper.configured:
        configure_mappers()
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(row)
    return instance


async def load_fast(session: Any, model: Any, statement: Any, parameters: dict[str, Any]) -> Any:
    """The first row of `statement` (a `fast` SELECT of `model`'s columns, `select(*model.__table__.c)`)
    as an instance of the session, as `session.scalar(select(model)...)` gives it, for a fraction of the
    ORM's loading cost: the instance the session already has (not refreshed, as the ORM does), or a
    new persistent one whose changes the session saves. None when there is no row. The model's
    attributes must be named as its columns (as for `insert_new`)."""
    row = (await session.execute(statement, parameters)).first()
    return None if row is None else await _instance_of(session, model, row)


async def load_fast_with(session: Any, model: Any, statement: Any, parameters: dict[str, Any]) -> tuple[Any, Any]:
    """`load_fast` of a statement that selects `model`'s columns then others: (the instance, made of the
    model's columns only, and the row, for the others), or (None, None) when there is no row."""
    row = (await session.execute(statement, parameters)).first()
    return (None, None) if row is None else (await _instance_of(session, model, row), row)


async def load_all_fast(session: Any, model: Any, statement: Any, parameters: dict[str, Any]) -> list[Any]:
    """Every row of `statement` as `load_fast` gives its first."""
    return [await _instance_of(session, model, row) for row in await session.execute(statement, parameters)]


async def _instance_of(session: Any, model: Any, row: Any) -> Any:
    mapper = model.__mapper__
    key = mapper.identity_key_from_primary_key([getattr(row, column.key) for column in mapper.primary_key])
    sync = session.sync_session
    known = sync.identity_map.get(key)
    if known is not None:
        if inspect(known).expired_attributes:  # the ORM's loading would refresh them from the row
            return await session.scalar(select(model).where(*(column == getattr(row, column.key)
                                                              for column in mapper.primary_key)))
        return known
    values = row._asdict()
    if len(values) > len(model.__table__.c):  # `load_fast_with`: the model's columns come first
        values = dict(zip(model.__table__.c.keys(), row, strict=False))
    instance = _transient(model, values)
    make_transient_to_detached(instance)
    sync.add(instance)
    return instance


async def get_fast(session: Any, model: Any, ident: Any) -> Any:
    """`session.get(model, ident)` (a single-column primary key) through `load_fast`: the instance the
    session has, without a query, or the row loaded at a fraction of the ORM's cost."""
    known = session.sync_session.identity_map.get(model.__mapper__.identity_key_from_primary_key([ident]))
    if known is not None:  # an expired one is refreshed by the ORM, as `session.get` does
        return await session.get(model, ident) if inspect(known).expired_attributes else known
    return await load_fast(session, model, _by_primary_key(model), {"pk": ident})


@functools.cache
def _by_primary_key(model: Any) -> Any:
    (key,) = model.__mapper__.primary_key
    return fast(select(*model.__table__.c).where(key == bindparam("pk")))


async def insert_all(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows of `model` at once, in one executemany (see `insert_new`)."""
    if rows:
        await session.execute(_insert_of_all_columns(model),
                              [{f"c_{name}": value for name, value in _full_row(model, row).items()} for row in rows])


class FastRows(list):  # type: ignore[type-arg]
    """The rows of a fast statement, with the Result methods our read paths use."""

    def all(self) -> list[Any]:
        return list(self)

    def one(self) -> Any:
        if len(self) != 1:
            raise ValueError(f"expected one row, got {len(self)}")
        return self[0]

    def first(self) -> Any:
        return self[0] if self else None

    def scalars(self) -> FastRows:
        return FastRows(row[0] for row in self)


class CompiledFast:
    """What a fast path keeps of a statement compiled once for its dialect: the order of its parameters,
    their converters and the statement's own values, and the converters and names of its columns."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        computed = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if computed:  # SQLAlchemy's execution would compute these; this path would write NULL
            raise ValueError(f"a fast statement must set {', '.join(c.name for c in computed)} itself")
        self.compiled = compiled
        self.names: list[str] = list(compiled.positiontup or [])
        binds = compiled.binds
        self.expanding = [name for name in dict.fromkeys(self.names) if binds[name].expanding]
        # the statement's own values (a literal, None included); a bind parameter without one is required
        self.defaults = {name: binds[name].value for name in self.names
                         if name in binds and not binds[name].required and not binds[name].expanding}
        self.bind_processors = {name: binds[name].type._cached_bind_processor(dialect) for name in set(self.names)}
        columns = compiled._result_columns
        processors = [column.type._cached_result_processor(dialect, None) for column in columns]
        self.converted = [(index, process) for index, process in enumerate(processors) if process is not None]
        self.row = collections.namedtuple("Row", [column.keyname for column in columns], rename=True)  # type: ignore[misc]

    def rows(self, raw_rows: Any) -> FastRows:
        """The driver's rows as named tuples of converted values."""
        make, converted = self.row._make, self.converted
        if not converted:
            return FastRows(map(make, raw_rows))
        rows = FastRows()
        for raw in raw_rows:
            values = list(raw)
            for index, process in converted:
                values[index] = process(values[index])
            rows.append(make(values))
        return rows


class _Compiled(CompiledFast):
    """A fast statement for sqlite3: its SQL, in which an expanding IN list is written out per call."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        super().__init__(statement, dialect)
        self.sql: str = self.compiled.string

    def run_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute a statement without an expanding list once per parameter set, in one executemany."""
        names, defaults, processors = self.names, self.defaults, self.bind_processors
        args = [[(processors[name] or _same)(row[name] if name in row else defaults[name]) for name in names]
                for row in rows]
        if connection.dispatch.before_cursor_execute:  # statement counters in tests
            connection.dispatch.before_cursor_execute(connection, None, self.sql, args, None, True)
        connection.connection.dbapi_connection.executemany(self.sql, args)  # type: ignore[union-attr]

    def run(self, connection: Connection, parameters: dict[str, Any]) -> FastRows | None:
        sql, args = self.sql, []
        for name in self.names:
            value = parameters[name] if name in parameters else self.defaults[name]
            process = self.bind_processors[name]
            if name in self.expanding:
                if not value:
                    return None  # an empty IN list: SQLAlchemy writes it its own way
                args.extend(map(process, value) if process else value)
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(value)))
            else:
                args.append(process(value) if process else value)
        if connection.dispatch.before_cursor_execute:  # statement counters in tests
            connection.dispatch.before_cursor_execute(connection, None, sql, args, None, False)
        cursor = connection.connection.dbapi_connection.execute(sql, args)  # type: ignore[union-attr]
        return self.rows(cursor.fetchall())


_COMPILED: weakref.WeakKeyDictionary[Any, _Compiled] = weakref.WeakKeyDictionary()


def _same(value: Any) -> Any:
    return value


def _fast_rows(connection: Connection, statement: Any, parameters: dict[str, Any] | list[dict[str, Any]]
               ) -> FastRows | None:
    """The statement's rows through sqlite3 directly, or None where SQLAlchemy must run it. A list of
    parameter sets is one executemany (an INSERT of many rows), which returns no rows."""
    compiled = _COMPILED.get(statement)
    if compiled is None:
        compiled = _COMPILED[statement] = _Compiled(statement, connection.dialect)
    if isinstance(parameters, list):
        compiled.run_many(connection, parameters)
        return FastRows()
    return compiled.run(connection, parameters)


_LOOP_ENGINES = "_voisinage_loop_engines"


def loop_engine(engine: AsyncEngine, role: str) -> Engine | None:
    """The synchronous `reader` or `writer` engine of a SQLite file (None for other databases), made on
    first use. Readers are `query_only`; writers begin IMMEDIATE and never wait for the lock (see
    `LoopSession.begin_immediate`). Their pools never wait either: the event loop would stop."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    engines = engine.sync_engine.__dict__.setdefault(_LOOP_ENGINES, {})
    made = engines.get(role)
    if made is None:
        pragmas = ("query_only=ON",) if role == "reader" else ("busy_timeout=0",
                                                                f"wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        made = create_engine(engine.url.set(drivername="sqlite"), pool_size=2, max_overflow=-1,
                             execution_options={"sqlite_write": role == "writer"})
        _tune_sqlite(made, *pragmas)
        engines[role] = made
    return made


# The loop writer leaves WAL checkpoints to `checkpointing`'s thread; past this many pages of WAL (16 MB)
# it checkpoints itself, on the loop, as SQLite does by default every 1,000 pages (where no checkpointer
# runs: a test's engine; or one that cannot keep up).
WRITER_AUTOCHECKPOINT_PAGES = 4000
CHECKPOINT_SECONDS = 0.2  # after a commit, how long the checkpointer lets further commits gather


@contextlib.asynccontextmanager
async def checkpointing(engine: AsyncEngine) -> AsyncIterator[None]:
    """While the block runs, copy a SQLite file's write-ahead log back into the database on a thread of
    its own, shortly after the loop writer commits.

    By default SQLite does that work inside the commit that takes the log past 1,000 pages: on the event
    loop's thread (our writes run there), which then stops every request for the copy and its fsync. A
    passive checkpoint takes no lock that readers or the writer wait for, and sqlite3 lets go of the GIL
    while it runs, so on a second core it costs the loop little. Nothing on other databases."""
    writer = loop_engine(engine, "writer")
    if writer is None:
        yield
        return
    wake, stop = threading.Event(), threading.Event()

    def committed(connection: Any) -> None:
        wake.set()

    event.listen(writer, "commit", committed)
    thread = threading.Thread(target=_checkpoint_loop, args=(str(engine.url.database), wake, stop),
                              name="sqlite-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        event.remove(writer, "commit", committed)
        stop.set()
        wake.set()
        await asyncio.to_thread(thread.join)


def _checkpoint_loop(path: str, wake: threading.Event, stop: threading.Event) -> None:
    log = logging.getLogger("voisinage.db")
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        log.warning("no WAL checkpointer: cannot open %s; the writer checkpoints itself", path, exc_info=True)
        return
    try:
        connection.execute("PRAGMA synchronous=NORMAL")  # as the writers: a checkpoint syncs like them
        while not stop.is_set():
            wake.wait()
            wake.clear()  # a commit from now on wakes us again
            if stop.wait(CHECKPOINT_SECONDS):
                return  # closing the file's last connection checkpoints it anyway
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:  # a hiccup (disk full...): the next commit wakes us again
                log.warning("WAL checkpoint failed", exc_info=True)
    finally:
        connection.close()


def writes_on_loop(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Whether `write_session` runs its statements on the event loop's thread (a SQLite file)."""
    engine = sessionmaker.kw.get("bind")
    return engine is not None and loop_engine(engine, "writer") is not None


def read_session(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """A session for a read-only request: `async with read_session(sm) as session`. On a SQLite file it
    is a `LoopSession`; keep it to reads that take milliseconds (timelines, token lookups), since the
    event loop waits for them. On PostgreSQL a `pg_fast.PgReadSession` (an ORM session only when a
    statement needs one). Otherwise an ordinary session."""
    engine = sessionmaker.kw.get("bind")
    if engine is not None and engine.dialect.name == "postgresql":
        from .pg_fast import PgReadSession

        return PgReadSession(sessionmaker)
    reader = loop_engine(engine, "reader") if engine is not None else None
    return LoopSession(reader, sessionmaker.kw.get("info")) if reader is not None else sessionmaker()


def all_engines(engine: AsyncEngine) -> list[Engine]:
    """The synchronous engines that run the engine's statements (to listen to them): its own, and on
    a SQLite file the loop reader and writer."""
    loop_engines = [loop_engine(engine, role) for role in ("reader", "writer")]
    return [engine.sync_engine, *(e for e in loop_engines if e is not None)]


async def close_database(engine: AsyncEngine) -> None:
    """Dispose of the engine and of the loop engines made for it."""
    await _dispose_pools(engine)
    engine.sync_engine.__dict__.pop(_LOOP_ENGINES, None)


async def _dispose_pools(engine: AsyncEngine) -> None:
    """Close the pooled connections of the engine and its loop engines (new ones open on demand)."""
    for made in engine.sync_engine.__dict__.get(_LOOP_ENGINES, {}).values():
        made.dispose()
    await engine.dispose()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (creating it on a fresh database)."""
    from alembic import command

    url = engine.url.render_as_string(hide_password=False)
    config = _alembic_config(url)

    def run(connection: Any) -> None:
        config.attributes["connection"] = connection
        with warnings.catch_warnings():
            # SQLite's batch migrations reflect tables; the functional index on actors (lower-cased
            # names) cannot be reflected, is not touched, and the warning would reach operators.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)


_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(?:None|['\"](\w+)['\"])\s*$", re.M)


def migration_heads() -> set[str]:
    """The newest revision(s) of models/migrations, read from the files' `revision`/`down_revision`
    lines: a start-up that finds the schema current never imports Alembic (about 11 MB)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None:
            continue
        if down is None:  # a merge or a form this reader does not know: ask Alembic
            from alembic.script import ScriptDirectory

            return set(ScriptDirectory(str(MIGRATIONS)).get_heads())
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    return revisions - parents


async def needs_migration(engine: AsyncEngine) -> bool:
    """Whether the database is not at the newest migration (a fresh one never is)."""
    try:
        async with engine.connect() as conn:
            current = set(await conn.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:  # no alembic_version table: a fresh database
        return True
    return current != migration_heads()


async def refresh_statistics(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Let the query planner know the tables' sizes (ANALYZE). Without statistics SQLite may read a
    resident's thousands of posts by author where twenty index lookups by boosted post would do, and
    PostgreSQL misjudges a freshly filled database. SQLite samples at most 1,000 rows per index."""
    async with write_session(sessionmaker) as session:
        if session.bind.dialect.name == "sqlite":
            await session.execute(text("PRAGMA analysis_limit=1000"))
        await session.execute(text("ANALYZE"))
    engine = sessionmaker.kw.get("bind")
    if engine is not None and engine.dialect.name == "sqlite":
        # Another SQLite connection keeps the statistics it loaded: let the pools open new ones.
        await _dispose_pools(engine)


# A process holds its node while it renews `seen_at`; a row unseen for NODE_TTL is a dead process's.
NODE_TTL = dt.timedelta(minutes=10)
NODE_RENEW_SECONDS = 60.0
NODES = 1 << ids.NODE_BITS


async def claim_node(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Take a node number no live process holds, for this process's ids (see models/ids.py); returns
    the id_nodes row, which `renew_node` keeps alive. Claims are serialised (SQLite's write lock,
    PostgreSQL's table lock), so two processes starting at once never take the same node."""
    from .base import utcnow
    from .meta import IdNode

    async with write_session(sessionmaker) as session:
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("LOCK TABLE id_nodes IN EXCLUSIVE MODE"))
        now = utcnow()
        await session.execute(delete(IdNode).where(IdNode.created_at < now - dt.timedelta(days=1),
                                                   (IdNode.seen_at.is_(None)) | (IdNode.seen_at < now - NODE_TTL)))
        held = set(await session.scalars(select(IdNode.node).where(
            IdNode.node.is_not(None), IdNode.seen_at >= now - NODE_TTL)))
        free = [n for n in range(NODES) if n not in held]
        if not free:
            raise RuntimeError(f"all {NODES} id nodes are held by live processes")
        node = free[0]
        row = (await session.execute(insert(IdNode).values(node=node, seen_at=now, created_at=now)
                                     .returning(IdNode.id))).scalar_one()
    ids.set_node(node)
    return int(row)


async def renew_node(sessionmaker: async_sessionmaker[AsyncSession], row_id: int) -> None:
    """Keep holding this process's node (call every NODE_RENEW_SECONDS)."""
    from .base import utcnow
    from .meta import IdNode

    async with write_session(sessionmaker) as session:
        await session.execute(update(IdNode).where(IdNode.id == row_id).values(seen_at=utcnow()))


async def release_node(sessionmaker: async_sessionmaker[AsyncSession], row_id: int) -> None:
    """Give the node back at a clean stop (a killed process's node returns after NODE_TTL)."""
    from .meta import IdNode

    async with write_session(sessionmaker) as session:
        await session.execute(update(IdNode).where(IdNode.id == row_id).values(seen_at=None))


@contextlib.asynccontextmanager
async def keeping_node(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Renew the node `open_database` claimed while the block runs, and give it back at the end. A
    process that lives longer than NODE_TTL (serve, worker, a long seed) must run inside this."""
    row_id = (sessionmaker.kw.get("info") or {}).get(NODE_ROW)
    if row_id is None:
        yield
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(NODE_RENEW_SECONDS)
            try:
                await renew_node(sessionmaker, row_id)
            except Exception:  # a database hiccup: try again at the next beat
                logging.getLogger("voisinage.ids").warning("could not renew the id node", exc_info=True)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await release_node(sessionmaker, row_id)


NODE_ROW = "id_node_row"  # key of the claimed id_nodes row in the sessionmaker's `info`


async def open_database(url: str, *, migrate_first: bool = True) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Engine + sessionmaker, migrated and with this process's id node claimed (see `keeping_node`)."""
    engine = make_engine(url)
    if migrate_first and await needs_migration(engine):
        await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    row_id = await claim_node(sessionmaker)
    sessionmaker.configure(info={**(sessionmaker.kw.get("info") or {}), NODE_ROW: row_id})
    return engine, sessionmaker


__all__ = ["close_database", "make_engine", "make_sessionmaker", "migrate", "open_database", "read_session", "select",
           "write_session"]
