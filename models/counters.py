"""Counters kept on rows (statuses, followers, replies, boosts, favourites): moved in SQL, never
below zero, by statements built once per kind of counter."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, case, update
from sqlalchemy.ext.asyncio import AsyncSession

from .db import fast


async def add_to_counter(session: AsyncSession, model: Any, row_id: int, column: str, delta: int,
                         returning: tuple[Any, ...] = (), **also: Any) -> Any:
    """`column += delta`, never below zero, in SQL (concurrent writers cannot lose an update); `also`
    sets other columns of the row at once. Loaded objects keep their old count (the caller refreshes
    what it renders). With `returning` (columns of the row), the row as the update left it."""
    statement = _counter_statement(model, column, delta > 0, tuple(sorted(also)), returning)
    stamps = {c.name: c.onupdate.arg(None) for c in _stamped(model) if c.name not in also}
    rows = await session.execute(statement, {"row_id": row_id, "delta": delta, **stamps, **also})
    return rows.first() if returning else None


@functools.cache
def _stamped(model: Any) -> tuple[Any, ...]:
    """The model's columns with an `onupdate` value (an actor's `updated_at`)."""
    return tuple(c for c in model.__table__.c if c.onupdate is not None)


@functools.lru_cache(maxsize=64)
def _counter_statement(model: Any, column: str, growing: bool, also: tuple[str, ...],
                       returning: tuple[Any, ...] = ()) -> Any:
    """Built once per kind of counter (building a statement costs more than running this one); a fast
    statement, so the row's `onupdate` columns (an actor's `updated_at`) are set by the caller."""
    table = model.__table__
    col, delta = table.c[column], bindparam("delta", type_=table.c[column].type)
    value = col + delta if growing else case((col + delta > 0, col + delta), else_=0)
    stamped = [c.name for c in _stamped(model) if c.name not in also]
    statement = (update(table).where(table.c.id == bindparam("row_id", type_=table.c.id.type))
                 .values({column: value, **{name: bindparam(name, type_=table.c[name].type)
                                            for name in (*also, *stamped)}}))
    return fast(statement.returning(*returning) if returning else statement)
