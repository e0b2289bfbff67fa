"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def get_authorize(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def post_authorize(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
