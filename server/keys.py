"""Every web.AppKey the application stores state under."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
SECRET = web.AppKey("secret", str)  # instance secret (CSRF tokens), shared by all processes via the DB
TOKEN_CACHE = web.AppKey("token_cache", dict)
EVENT_BUS = web.AppKey("event_bus", Any)  # models.events.EventBus
CLOCK = web.AppKey("clock", Any)  # callable returning Unix time; tests may replace it
