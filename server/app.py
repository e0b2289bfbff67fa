"""create_app(settings) -> web.Application, with the database, templates and workers as cleanup contexts."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import AsyncIterator

import jinja2
from aiohttp import web

from voisinage.models import db
from voisinage.models.events import EventBus, bind_bus
from voisinage.models.meta import get_or_create_secret

from . import middleware
from .keys import CLOCK, ENGINE, EVENT_BUS, SECRET, SESSIONMAKER, SETTINGS, TEMPLATES, TOKEN_CACHE
from .routes import setup_routes
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
    async with db.write_session(sessionmaker) as session:
        app[SECRET] = await get_or_create_secret(session, "secret_key")
    yield
    await bus.close()
    await engine.dispose()


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("voisinage.server", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[middleware.errors_and_cors], client_max_size=MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[TOKEN_CACHE] = {}
    app[TEMPLATES] = make_templates()
    app[CLOCK] = time.time
    app[EVENT_BUS] = EventBus()
    app.cleanup_ctx.append(_database)
    setup_routes(app)
    app.router.add_static("/static/", STATIC, append_version=False)
    return app


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
