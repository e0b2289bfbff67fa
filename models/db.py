"""Engines, sessions and migrations.

SQLite runs in WAL mode with a busy timeout, so the CLI can write while the server runs; write
transactions start with BEGIN IMMEDIATE (`write_session`) so that two writers queue on the busy timeout
instead of failing on a lock upgrade. PostgreSQL needs none of this.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions cannot BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                       "temp_store=MEMORY", "cache_size=-16000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def write_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction takes SQLite's write lock at once; commits on success."""
    async with sessionmaker() as session:
        await session.connection(execution_options={"sqlite_write": True})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


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
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def needs_migration(engine: AsyncEngine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    heads = set(script.get_heads())

    def current(connection: Any) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(current) != heads


async def claim_node(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Take a fresh node number for this process's ids (see models/ids.py)."""
    from .meta import IdNode

    async with write_session(sessionmaker) as session:
        result = await session.execute(insert(IdNode).returning(IdNode.id))
        node = int(result.scalar_one())
    ids.set_node(node)
    return node


async def open_database(url: str, *, migrate_first: bool = True) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Engine + sessionmaker, migrated and with this process's id node claimed."""
    engine = make_engine(url)
    if migrate_first and await needs_migration(engine):
        await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    await claim_node(sessionmaker)
    return engine, sessionmaker


__all__ = ["make_engine", "make_sessionmaker", "migrate", "open_database", "select", "write_session"]
