"""Reading what a live-event bus subscription received."""

from __future__ import annotations

import asyncio
from typing import Any


async def received(subscription: Any, wait: float = 0.3) -> list[int]:
    """The object ids of the events `subscription` has received, after `wait` seconds (PostgreSQL's
    NOTIFY comes back through the bus's listening connection; SQLite's events arrive at the commit)."""
    if wait:
        await asyncio.sleep(wait)
    got = []
    while not subscription.queue.empty():
        got.append(subscription.queue.get_nowait().object_id)
    return got
