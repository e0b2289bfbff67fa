"""Instance information, v1 and v2, open without a token (apps read it before logging in)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from voisinage.models.actor import Actor
from voisinage.models.db import read_session
from voisinage.models.post import Post
from voisinage.models.resident import Resident
from voisinage.models.village import Village

from .. import __version__
from ..errors import json_response
from ..keys import SESSIONMAKER, SETTINGS
from .to_api import default_image

MASTODON_VERSION = "4.3.0"
MAX_CHARACTERS = 500
MAX_MEDIA = 4
STATS_SECONDS = 60.0
_STATS_KEY = web.AppKey("instance_stats", dict)

HOUSE_RULES = [
    "Présentez-vous sous votre vrai nom : un compte par personne, vérifié par le code du ménage.",
    "Restez courtois et bienveillant envers vos voisins.",
    "Pas de publicité commerciale répétée ; les petites annonces entre voisins sont bienvenues (#annonce).",
    "Pas de propos haineux, discriminatoires ou diffamatoires.",
    "Respectez la vie privée : ne publiez pas d'informations personnelles sur autrui.",
]


def version_string() -> str:
    """Clients parse the part before the first space as a Mastodon version (masto.js, Phanpy)."""
    return f"{MASTODON_VERSION} (compatible; Voisinage {__version__})"


async def _stats(request: web.Request) -> dict[str, Any]:
    """Counts shown by the instance endpoints, cached for a minute per process."""
    cache = request.app.get(_STATS_KEY)
    if cache and cache["at"] > time.monotonic() - STATS_SECONDS:
        return cache
    async with read_session(request.app[SESSIONMAKER]) as session:
        users = await session.scalar(select(func.count()).select_from(Resident))
        statuses = await session.scalar(
            select(func.count()).select_from(Post).where(Post.local.is_(True), Post.reblog.is_(False)))
        domains = await session.scalar(select(func.count(func.distinct(Actor.domain))).where(Actor.domain != ""))
        villages = list(await session.scalars(select(Village.name).order_by(Village.name)))
    cache = {"at": time.monotonic(), "users": int(users or 0), "statuses": int(statuses or 0),
             "domains": int(domains or 0), "villages": villages}
    request.app[_STATS_KEY] = cache
    return cache


def _configuration(streaming: str) -> dict[str, Any]:
    return {
        "urls": {"streaming": streaming},
        "vapid": {"public_key": ""},
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {"max_characters": MAX_CHARACTERS, "max_media_attachments": MAX_MEDIA,
                     "characters_reserved_per_url": 23},
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
            "image_size_limit": 16777216, "image_matrix_limit": 33177600,
            "video_size_limit": 0, "video_frame_rate_limit": 0, "video_matrix_limit": 0,
        },
        "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
                  "max_expiration": 2629746},
        "translation": {"enabled": False},
    }


def _rules() -> list[dict[str, str]]:
    return [{"id": str(i + 1), "text": text, "hint": ""} for i, text in enumerate(HOUSE_RULES)]


def _description(settings: Any, villages: list[str]) -> str:
    names = ", ".join(villages) if villages else "—"
    return (f"Réseau de voisinage de {settings.instance.name}. Villages : {names}. "
            "Inscription avec le code reçu par courrier dans chaque ménage.")


async def get_instance_v1(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    stats = await _stats(request)
    streaming = f"{'wss' if settings.instance.scheme == 'https' else 'ws'}://{settings.instance.domain}"
    config = _configuration(streaming)
    del config["urls"], config["vapid"], config["translation"]
    return json_response({
        "uri": settings.instance.domain,
        "title": settings.instance.name,
        "short_description": _description(settings, stats["villages"]),
        "description": _description(settings, stats["villages"]),
        "email": settings.instance.contact_email,
        "version": version_string(),
        "urls": {"streaming_api": streaming},
        "stats": {"user_count": stats["users"], "status_count": stats["statuses"],
                  "domain_count": stats["domains"]},
        "thumbnail": default_image(settings.base_url, "header"),
        "languages": list(settings.instance.languages),
        "registrations": True,
        "approval_required": False,
        "invites_enabled": True,
        "configuration": config,
        "contact_account": None,
        "rules": _rules(),
    })


async def get_instance_v2(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    stats = await _stats(request)
    streaming = f"{'wss' if settings.instance.scheme == 'https' else 'ws'}://{settings.instance.domain}"
    return json_response({
        "domain": settings.instance.domain,
        "title": settings.instance.name,
        "version": version_string(),
        "source_url": "",
        "description": _description(settings, stats["villages"]),
        "usage": {"users": {"active_month": stats["users"]}},
        "thumbnail": {"url": default_image(settings.base_url, "header"), "blurhash": None, "versions": {}},
        "icon": [],
        "languages": list(settings.instance.languages),
        "configuration": _configuration(streaming),
        "registrations": {
            "enabled": True,
            "approval_required": False,
            "reason_required": False,
            "message": "Un code de ménage, reçu par courrier, est nécessaire pour s'inscrire.",
            "min_age": None,
            "url": f"{settings.base_url}/register",
        },
        "api_versions": {"mastodon": 2},
        "contact": {"email": settings.instance.contact_email, "account": None},
        "rules": _rules(),
    })


async def get_custom_emojis(request: web.Request) -> web.Response:
    """Voisinage has no custom emojis: the empty list is the real state."""
    return json_response([])
