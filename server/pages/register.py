"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def get_register(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def post_register(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
