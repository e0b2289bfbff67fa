"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def create_app(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def verify_app(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
