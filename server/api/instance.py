"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def get_instance_v1(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_instance_v2(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_custom_emojis(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
