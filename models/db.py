"""Engines, sessions and migrations.

SQLite runs in WAL mode with a busy timeout, so the CLI can write while the server runs; write
transactions start with BEGIN IMMEDIATE (`write_session`) so that two writers queue on the busy timeout
instead of failing on a lock upgrade. Hot read-only requests may use `read_session`, which on SQLite
runs its statements on the event loop's thread. PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import warnings
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

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
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


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
        immediate = conn.get_execution_options().get("sqlite_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _writer_lock(sessionmaker: async_sessionmaker[AsyncSession]) -> asyncio.Lock | None:
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
        lock = locks[loop] = asyncio.Lock()  # one per event loop: an asyncio lock belongs to one
    return lock


@contextlib.asynccontextmanager
async def write_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction takes SQLite's write lock at once; commits on success. Do not open
    one inside another: on SQLite the inner one would wait for the outer one forever."""
    lock = _writer_lock(sessionmaker)
    async with lock if lock is not None else contextlib.nullcontext(), sessionmaker() as session:
        await session.connection(execution_options={"sqlite_write": True})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


class _LoopConnection:
    """A synchronous connection behind the awaitable methods the read paths call."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.execute(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.scalars(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._connection.scalar(statement, parameters, **kwargs)


class LoopReadSession(_LoopConnection):
    """A read-only ORM session on SQLite whose statements run on the event loop's own thread.

    Through aiosqlite every statement is handed to the connection's thread and back four times
    (cursor, execute, fetch, close), which costs more than the small indexed reads of a timeline page.
    In WAL mode a reader never waits for a writer, so running them inline only costs their own time.
    The connection is `query_only`: a write through it fails instead of taking the write lock."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(Session(engine))
        self.bind = engine

    async def __aenter__(self) -> LoopReadSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._connection.close()

    async def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        return self._connection.get(entity, ident, **kwargs)

    async def connection(self, **kwargs: Any) -> _LoopConnection:
        return _LoopConnection(self._connection.connection(**kwargs))


def loop_reader(engine: AsyncEngine) -> Engine | None:
    """The synchronous read engine of a file SQLite database (None for others), made on first use."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    reader = engine.sync_engine.__dict__.get("_voisinage_loop_reader")
    if reader is None:
        reader = create_engine(engine.url.set(drivername="sqlite"), connect_args={"timeout": 30},
                               pool_size=4, max_overflow=-1)  # never wait: the loop would stop
        _tune_sqlite(reader, "query_only=ON")
        engine.sync_engine.__dict__["_voisinage_loop_reader"] = reader
    return reader


def read_session(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """A session for a read-only request: `async with read_session(sm) as session`. On SQLite it is a
    `LoopReadSession`; keep it to reads that take milliseconds (timelines, token lookups), since the
    event loop waits for them. On PostgreSQL, an ordinary session."""
    engine = sessionmaker.kw.get("bind")
    reader = loop_reader(engine) if engine is not None else None
    return LoopReadSession(reader) if reader is not None else sessionmaker()


async def close_database(engine: AsyncEngine) -> None:
    """Dispose of the engine and of its loop reader, if it made one."""
    reader = engine.sync_engine.__dict__.pop("_voisinage_loop_reader", None)
    if reader is not None:
        reader.dispose()
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
