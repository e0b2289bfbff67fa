"""PLACEHOLDER (being written): ActivityPub, WebFinger and NodeInfo routes."""

from __future__ import annotations

from aiohttp import web


def setup_federation_routes(app: web.Application) -> None:
    """Add the federation routes to `app` (none yet)."""
