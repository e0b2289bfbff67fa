"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def create_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def delete_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_context(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def favourite_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def unfavourite_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def reblog_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def unreblog_status(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_favourited_by(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_reblogged_by(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
