"""Counting the SQL an engine runs: every connection of it, on SQLite the loop reader and writer too."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from voisinage.models import db


@contextlib.contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements run while the block runs, in order (the list fills as they run)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = db.all_engines(engine)
    for each in engines:
        event.listen(each, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", record)
