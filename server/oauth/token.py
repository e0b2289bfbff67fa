"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def post_token(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def post_revoke(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_metadata(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
