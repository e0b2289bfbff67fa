"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def create_account(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
