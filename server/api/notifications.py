"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web


async def get_notifications(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def clear_notifications(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_notification(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def dismiss_notification(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
