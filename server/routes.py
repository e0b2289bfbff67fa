"""The one flat route table: API, OAuth and pages, one line per endpoint, with the scope each needs.

`scope=None` marks a route open without a token (DESIGN.md "Interfaces" lists which may be);
`user=False` lets an app-only token (client_credentials) through. Every path also answers with a
trailing slash, as Mastodon.py and toot sometimes send one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from .api import accounts, instance, media, notifications, registration, statuses, streaming, timelines
from .auth import guard
from .oauth import apps, authorize, token
from .pages import register

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    scope: str | None
    user: bool = True
    guarded: bool = True  # False: the token is not even read (media files load in <img> tags)


def R(method: str, path: str, handler: Handler, scope: str | None, user: bool = True,
      guarded: bool = True) -> Route:
    return Route(method, path, handler, scope, user, guarded)


ROUTES: list[Route] = [
    # instance
    R("GET", "/api/v1/instance", instance.get_instance_v1, None),
    R("GET", "/api/v2/instance", instance.get_instance_v2, None),
    R("GET", "/api/v1/custom_emojis", instance.get_custom_emojis, "read", user=False),
    # OAuth and apps
    R("POST", "/api/v1/apps", apps.create_app, None),
    R("GET", "/api/v1/apps/verify_credentials", apps.verify_app, "read", user=False),
    R("GET", "/oauth/authorize", authorize.get_authorize, None),
    R("POST", "/oauth/authorize", authorize.post_authorize, None),
    R("POST", "/oauth/token", token.post_token, None),
    R("POST", "/oauth/revoke", token.post_revoke, None),
    R("GET", "/.well-known/oauth-authorization-server", token.get_metadata, None),
    # registration page
    R("GET", "/register", register.get_register, None),
    R("POST", "/register", register.post_register, None),
    # accounts
    R("POST", "/api/v1/accounts", registration.create_account, "write:accounts", user=False),
    R("GET", "/api/v1/accounts/verify_credentials", accounts.verify_credentials, "read:accounts"),
    R("PATCH", "/api/v1/accounts/update_credentials", accounts.update_credentials, "write:accounts"),
    R("GET", "/api/v1/accounts/relationships", accounts.get_relationships, "read:follows"),
    R("GET", "/api/v1/accounts/lookup", accounts.lookup_account, "read:accounts"),
    R("GET", "/api/v1/accounts/search", accounts.search_accounts, "read:accounts"),
    R("GET", "/api/v1/accounts/{id}", accounts.get_account, "read:accounts"),
    R("GET", "/api/v1/accounts/{id}/statuses", accounts.get_account_statuses, "read:statuses"),
    R("GET", "/api/v1/accounts/{id}/followers", accounts.get_followers, "read:accounts"),
    R("GET", "/api/v1/accounts/{id}/following", accounts.get_following, "read:accounts"),
    R("POST", "/api/v1/accounts/{id}/follow", accounts.follow_account, "write:follows"),
    R("POST", "/api/v1/accounts/{id}/unfollow", accounts.unfollow_account, "write:follows"),
    # statuses
    R("POST", "/api/v1/statuses", statuses.create_status, "write:statuses"),
    R("GET", "/api/v1/statuses/{id}", statuses.get_status, "read:statuses"),
    R("DELETE", "/api/v1/statuses/{id}", statuses.delete_status, "write:statuses"),
    R("GET", "/api/v1/statuses/{id}/context", statuses.get_context, "read:statuses"),
    R("POST", "/api/v1/statuses/{id}/favourite", statuses.favourite_status, "write:favourites"),
    R("POST", "/api/v1/statuses/{id}/unfavourite", statuses.unfavourite_status, "write:favourites"),
    R("POST", "/api/v1/statuses/{id}/reblog", statuses.reblog_status, "write:statuses"),
    R("POST", "/api/v1/statuses/{id}/unreblog", statuses.unreblog_status, "write:statuses"),
    R("GET", "/api/v1/statuses/{id}/favourited_by", statuses.get_favourited_by, "read:accounts"),
    R("GET", "/api/v1/statuses/{id}/reblogged_by", statuses.get_reblogged_by, "read:accounts"),
    # timelines
    R("GET", "/api/v1/timelines/home", timelines.get_home, "read:statuses"),
    R("GET", "/api/v1/timelines/public", timelines.get_public, "read:statuses"),
    R("GET", "/api/v1/timelines/tag/{hashtag}", timelines.get_tag, "read:statuses"),
    # notifications
    R("GET", "/api/v1/notifications", notifications.get_notifications, "read:notifications"),
    R("POST", "/api/v1/notifications/clear", notifications.clear_notifications, "write:notifications"),
    R("GET", "/api/v1/notifications/{id}", notifications.get_notification, "read:notifications"),
    R("POST", "/api/v1/notifications/{id}/dismiss", notifications.dismiss_notification, "write:notifications"),
    # media
    R("POST", "/api/v2/media", media.create_media_v2, "write:media"),
    R("POST", "/api/v1/media", media.create_media_v1, "write:media"),
    R("GET", "/api/v1/media/{id}", media.get_media, "write:media"),
    R("PUT", "/api/v1/media/{id}", media.update_media, "write:media"),
    R("DELETE", "/api/v1/media/{id}", media.delete_media, "write:media"),
    R("GET", "/media/{prefix}/{key}/{name}", media.get_media_file, None, guarded=False),
    # streaming
    R("GET", "/api/v1/streaming", streaming.get_streaming, "read:statuses"),
    R("GET", "/api/v1/streaming/health", streaming.get_streaming_health, "read:statuses"),
    R("GET", "/api/v1/streaming/{stream:[a-z/:]+}", streaming.get_stream_sse, "read:statuses"),
]


def setup_routes(app: web.Application) -> None:
    for route in ROUTES:
        handler = guard(route.handler, route.scope, route.user) if route.guarded else route.handler
        app.router.add_route(route.method, route.path, handler)
        app.router.add_route(route.method, route.path + "/", handler)
