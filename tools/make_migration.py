"""Developer tool: write a new Alembic migration by comparing the models to a database migrated to head.

    .venv/bin/python tools/make_migration.py "add media"
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from voisinage.models import db


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'm.db'}"
        engine = db.make_engine(url)
        await db.migrate(engine)
        config = db._alembic_config(url)

        def run(connection):
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)

        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "change"))
