"""create_app(settings) -> web.Application, with the database, templates and workers as cleanup contexts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from voisinage.federation.context import FEDERATION, FederationContext, make_transport
from voisinage.federation.routes import setup_federation_routes
from voisinage.federation.workers import ensure_instance_actor, workers_ctx
from voisinage.models import all_models, db  # noqa: F401  (all_models: every table known at start)
from voisinage.models.events import EventBus, bind_bus
from voisinage.models.meta import get_or_create_secret

from . import middleware
from .keys import (
    CLOCK,
    ENGINE,
    EVENT_BUS,
    SECRET,
    SESSIONMAKER,
    SETTINGS,
    TOKEN_CACHE,
)
from .routes import setup_routes
from .services import maintenance
from .services.ratelimit import LocalCounters
from .settings import Settings

STATIC = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 1 << 20


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine, sessionmaker = await db.open_database(app[SETTINGS].database.url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = sessionmaker
    bus = app[EVENT_BUS]
    await bus.attach(engine)
    bind_bus(sessionmaker, bus)
    app[middleware.API_LIMITER] = LocalCounters() if engine.dialect.name == "sqlite" else None
    async with db.write_session(sessionmaker) as session:
        app[SECRET] = await get_or_create_secret(session, "secret_key")
    async with db.keeping_node(sessionmaker), db.checkpointing(engine):
        yield
    await bus.close()
    await db.close_database(engine)


async def _federation(app: web.Application) -> AsyncIterator[None]:
    """The federation context: our identity, the database, and the one outgoing HTTP client."""
    settings = app[SETTINGS]
    transport = make_transport(settings.instance.domain, settings.base_url,
                               settings.federation.allow_private_addresses)
    await transport.start()
    try:  # closed also when start-up fails below (aiohttp cleans up only the contexts that started)
        app[FEDERATION] = FederationContext(
            base_url=settings.base_url, domain=settings.instance.domain, scheme=settings.instance.scheme,
            sessionmaker=app[SESSIONMAKER], transport=transport,
            allow_private_addresses=settings.federation.allow_private_addresses, clock=app[CLOCK])
        # Local actions (posting, follows) reach federation through their session (services/federate.py).
        sessionmaker = app[SESSIONMAKER]
        sessionmaker.configure(info={**(sessionmaker.kw.get("info") or {}), "federation": app[FEDERATION]})
        await ensure_instance_actor(app[FEDERATION])
        yield
    finally:
        await transport.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """Federation workers and the periodic housekeeping, unless tests drive them by hand."""
    if not app[SETTINGS].run_workers:
        yield
        return
    stop = asyncio.Event()
    housekeeping = asyncio.create_task(
        maintenance.run_forever(app[SESSIONMAKER], Path(app[SETTINGS].media.path), stop))
    async for _ in workers_ctx(app):
        yield
    stop.set()
    await housekeeping


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[middleware.errors_and_cors, middleware.api_rate_limit], client_max_size=MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[TOKEN_CACHE] = {}
    app[CLOCK] = time.time
    app[EVENT_BUS] = EventBus()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_federation)
    app.cleanup_ctx.append(_workers)
    setup_routes(app)
    setup_federation_routes(app)
    app.router.add_static("/static/", STATIC, append_version=False)
    return app


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
