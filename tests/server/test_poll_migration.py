"""The "poll federated_at" migration: partners' polls stored as ending ten years on lose their end,
the others keep theirs, and new counts start as not pending."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from voisinage.models import db

BEFORE = "c3d5a7e9f1b2"
OURS = "1295a31ece7a"


async def test_far_future_ends_become_empty(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    engine = create_async_engine(url)  # no foreign keys enforced: polls without their posts will do
    config = db._alembic_config(url)

    def upgrade(to: str) -> Any:
        def run(connection: Any) -> None:
            config.attributes["connection"] = connection
            command.upgrade(config, to)
        return run

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    async with engine.begin() as conn:
        await conn.run_sync(upgrade(BEFORE))
        for poll_id, expires_at, counts in ((1, now + dt.timedelta(days=3650), "[0, 2]"),
                                            (2, now + dt.timedelta(days=1), "[1, 0]"),
                                            (3, now + dt.timedelta(days=30), None)):
            await conn.execute(text(
                "INSERT INTO polls (id, post_id, author_id, options, multiple, hide_totals, expires_at, created_at,"
                " remote_counts) VALUES (:id, :id, 1, '[\"A\", \"B\"]', 0, 0, :end, :now, :counts)"),
                {"id": poll_id, "end": expires_at, "now": now, "counts": counts})
    async with engine.begin() as conn:
        await conn.run_sync(upgrade(OURS))
        rows = (await conn.execute(text(
            "SELECT id, expires_at, federated_at, update_pending FROM polls ORDER BY id"))).all()
    await engine.dispose()
    assert [(r[0], r[1] is None, r[2], r[3]) for r in rows] == [(1, True, None, 0), (2, False, None, 0),
                                                                 (3, False, None, 0)]
    assert dt.datetime.fromisoformat(str(rows[1][1])) == now + dt.timedelta(days=1)
