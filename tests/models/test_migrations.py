"""The schema check of every start-up: current without Alembic, stale or fresh when it must migrate."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from voisinage.models import db


def test_the_heads_read_from_the_files_are_alembics():
    assert db.migration_heads() == set(ScriptDirectory(str(db.MIGRATIONS)).get_heads())
    assert len(db.migration_heads()) == 1


async def test_a_fresh_database_needs_migrating_a_migrated_one_not_an_older_one_again(tmp_path):
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        assert await db.needs_migration(engine)
        await db.migrate(engine)
        assert not await db.needs_migration(engine)
        async with engine.begin() as conn:  # as if the code were newer than the database
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ab2ce111ed53'"))
        assert await db.needs_migration(engine)
    finally:
        await engine.dispose()


def test_opening_a_current_database_does_not_import_alembic(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    script = (
        "import asyncio, sys\n"
        "from voisinage.models import db\n"
        "async def main():\n"
        "    engine, _ = await db.open_database(sys.argv[1])\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    again = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    assert first.stdout.strip() == "True", first.stderr  # the first opening migrates
    assert again.stdout.strip() == "False", again.stderr


async def test_statistics_make_the_planner_look_up_boosts_by_original(tmp_path):
    """After `refresh_statistics`, SQLite finds a reader's boosts of a page's posts through the
    boosted-post index, not by reading every post of the reader (measured: 7 ms -> 0.05 ms at 1M posts)."""
    from voisinage.models.db import make_sessionmaker

    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:  # one author with many posts, each original boosted once
            await conn.execute(text("INSERT INTO actors (id, username, domain, kind, uri, fields, locked, "
                                    "discoverable, bot, followers_count, following_count, statuses_count, "
                                    "note, note_source, display_name, created_at, updated_at) VALUES (1, 'a', '', 'Person', "
                                    "'u', '[]', 0, 1, 0, 0, 0, 0, '', '', '', '2026-01-01', '2026-01-01')"))
            await conn.execute(text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                "INSERT INTO posts (id, uri, author_id, local, visibility, origin_author_id, reblog, "
                "reblog_of_id, content, source, spoiler_text, sensitive, replies_count, reblogs_count, "
                "favourites_count, created_at) SELECT i, 'p' || i, 1, 1, 'public', 1, i > 1500, "
                "CASE WHEN i > 1500 THEN i - 1500 END, '', '', '', 0, 0, 0, 0, '2026-01-01' FROM n"))
        plan = "EXPLAIN QUERY PLAN SELECT reblog_of_id FROM posts WHERE author_id = 1 AND reblog_of_id IN (1, 2)"
        await db.refresh_statistics(make_sessionmaker(engine))
        async with engine.connect() as conn:
            details = " ".join(str(row[-1]) for row in await conn.execute(text(plan)))
        assert "reblog_of_id" in details, details
    finally:
        await engine.dispose()


@pytest.mark.filterwarnings("ignore:.*expression-based index")  # SQLite cannot reflect them
async def test_the_migrations_build_the_schema_the_models_describe(db_url):
    """Every table, column, index and foreign key of the models, and nothing else, after migrating a
    fresh database: a model changed without its migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from voisinage.models.base import Base

    engine, _ = await db.open_database(db_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}),
                                              Base.metadata))
    finally:
        await db.close_database(engine)
    assert differences == []
