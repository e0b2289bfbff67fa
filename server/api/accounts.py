"""PLACEHOLDER: being written (replace this whole module)."""

from aiohttp import web




async def verify_credentials(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def update_credentials(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_relationships(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def lookup_account(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def search_accounts(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_account(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_account_statuses(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_followers(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def get_following(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def follow_account(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()


async def unfollow_account(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotImplemented()
