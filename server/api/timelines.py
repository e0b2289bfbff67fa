"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def get_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_public(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_tag(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
