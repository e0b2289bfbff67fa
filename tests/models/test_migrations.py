"""The schema check of every start-up: current without Alembic, stale or fresh when it must migrate."""

from __future__ import annotations

import subprocess
import sys

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
