"""PLACEHOLDER (being written): background workers for inbox and delivery queues."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx that runs the workers while the app runs (none yet)."""
    yield
