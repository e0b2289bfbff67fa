"""The one flat route table: API, OAuth and pages, one line per endpoint, with the scope each needs.

`scope=None` marks a route open without a token (DESIGN.md "Interfaces" lists which may be);
`user=False` lets an app-only token (client_credentials) through. Every path also answers with a
trailing slash, as Mastodon.py and toot sometimes send one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .api import (
    accounts,
    bookmarks,
    conversations,
    directory,
    filters,
    follow_requests,
    instance,
    lists,
    markers,
    media,
    notifications,
    polls,
    preferences,
    registration,
    reports,
    search,
    statuses,
    streaming,
    tags,
    timelines,
)
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
    # statuses beyond the core: edits, bookmarks, pins, polls, conversations
    R("PUT", "/api/v1/statuses/{id}", statuses.edit_status, "write:statuses"),
    R("GET", "/api/v1/statuses/{id}/history", statuses.get_history, "read:statuses"),
    R("GET", "/api/v1/statuses/{id}/source", statuses.get_source, "read:statuses"),
    R("POST", "/api/v1/statuses/{id}/bookmark", statuses.bookmark_status, "write:bookmarks"),
    R("POST", "/api/v1/statuses/{id}/unbookmark", statuses.unbookmark_status, "write:bookmarks"),
    R("POST", "/api/v1/statuses/{id}/pin", statuses.pin_status, "write:accounts"),
    R("POST", "/api/v1/statuses/{id}/unpin", statuses.unpin_status, "write:accounts"),
    R("GET", "/api/v1/bookmarks", bookmarks.get_bookmarks, "read:bookmarks"),
    R("GET", "/api/v1/favourites", bookmarks.get_favourites, "read:favourites"),
    R("GET", "/api/v1/polls/{id}", polls.get_poll, "read:statuses"),
    R("POST", "/api/v1/polls/{id}/votes", polls.vote, "write:statuses"),
    R("GET", "/api/v1/conversations", conversations.get_conversations, "read:statuses"),
    R("DELETE", "/api/v1/conversations/{id}", conversations.delete_conversation, "write:conversations"),
    R("POST", "/api/v1/conversations/{id}/read", conversations.read_conversation, "write:conversations"),
    # lists, markers, filters, preferences, trends, announcements, reports, search
    R("GET", "/api/v1/lists", lists.get_lists, "read:lists"),
    R("POST", "/api/v1/lists", lists.create_list, "write:lists"),
    R("GET", "/api/v1/lists/{id}", lists.get_list, "read:lists"),
    R("PUT", "/api/v1/lists/{id}", lists.update_list, "write:lists"),
    R("DELETE", "/api/v1/lists/{id}", lists.delete_list, "write:lists"),
    R("GET", "/api/v1/lists/{id}/accounts", lists.get_list_accounts, "read:lists"),
    R("POST", "/api/v1/lists/{id}/accounts", lists.add_list_accounts, "write:lists"),
    R("DELETE", "/api/v1/lists/{id}/accounts", lists.remove_list_accounts, "write:lists"),
    R("GET", "/api/v1/accounts/{id}/lists", lists.get_account_lists, "read:lists"),
    R("GET", "/api/v1/timelines/list/{id}", lists.get_list_timeline, "read:lists"),
    R("GET", "/api/v1/markers", markers.get_markers, "read:statuses"),
    R("POST", "/api/v1/markers", markers.save_markers, "write:statuses"),
    R("GET", "/api/v2/filters", filters.get_filters_v2, "read:filters"),
    R("POST", "/api/v2/filters", filters.create_filter_v2, "write:filters"),
    R("GET", "/api/v2/filters/{id}", filters.get_filter_v2, "read:filters"),
    R("PUT", "/api/v2/filters/{id}", filters.update_filter_v2, "write:filters"),
    R("DELETE", "/api/v2/filters/{id}", filters.delete_filter_v2, "write:filters"),
    R("GET", "/api/v2/filters/{id}/keywords", filters.get_filter_keywords, "read:filters"),
    R("POST", "/api/v2/filters/{id}/keywords", filters.create_filter_keyword, "write:filters"),
    R("GET", "/api/v2/filter_keywords/{id}", filters.get_filter_keyword, "read:filters"),
    R("PUT", "/api/v2/filter_keywords/{id}", filters.update_filter_keyword, "write:filters"),
    R("DELETE", "/api/v2/filter_keywords/{id}", filters.delete_filter_keyword, "write:filters"),
    R("GET", "/api/v2/filters/{id}/statuses", filters.get_filter_statuses, "read:filters"),
    R("POST", "/api/v2/filters/{id}/statuses", filters.create_filter_status, "write:filters"),
    R("GET", "/api/v2/filter_statuses/{id}", filters.get_filter_status, "read:filters"),
    R("DELETE", "/api/v2/filter_statuses/{id}", filters.delete_filter_status, "write:filters"),
    R("GET", "/api/v1/filters", filters.get_filters_v1, "read:filters"),
    R("POST", "/api/v1/filters", filters.create_filter_v1, "write:filters"),
    R("GET", "/api/v1/filters/{id}", filters.get_filter_v1, "read:filters"),
    R("PUT", "/api/v1/filters/{id}", filters.update_filter_v1, "write:filters"),
    R("DELETE", "/api/v1/filters/{id}", filters.delete_filter_v1, "write:filters"),
    R("GET", "/api/v1/preferences", preferences.get_preferences, "read:accounts"),
    R("GET", "/api/v1/trends", preferences.get_trends, "read", user=False),
    R("GET", "/api/v1/trends/tags", preferences.get_trends, "read", user=False),
    R("GET", "/api/v1/trends/statuses", preferences.get_trends, "read", user=False),
    R("GET", "/api/v1/trends/links", preferences.get_trends, "read", user=False),
    R("GET", "/api/v1/announcements", preferences.get_announcements, "read"),
    R("POST", "/api/v1/announcements/{id}/dismiss", preferences.dismiss_announcement, "write:accounts"),
    R("POST", "/api/v1/reports", reports.create_report, "write:reports"),
    R("GET", "/api/v2/search", search.search_v2, "read:search"),
    # blocks, mutes, follow requests, directory, hashtags (followed and featured)
    R("POST", "/api/v1/accounts/{id}/block", accounts.block_account, "write:blocks"),
    R("POST", "/api/v1/accounts/{id}/unblock", accounts.unblock_account, "write:blocks"),
    R("POST", "/api/v1/accounts/{id}/mute", accounts.mute_account, "write:mutes"),
    R("POST", "/api/v1/accounts/{id}/unmute", accounts.unmute_account, "write:mutes"),
    R("GET", "/api/v1/accounts/{id}/featured_tags", tags.get_account_featured_tags, "read:accounts"),
    R("GET", "/api/v1/blocks", accounts.get_blocks, "read:blocks"),
    R("GET", "/api/v1/mutes", accounts.get_mutes, "read:mutes"),
    R("GET", "/api/v1/follow_requests", follow_requests.get_follow_requests, "read:follows"),
    R("POST", "/api/v1/follow_requests/{account_id}/authorize", follow_requests.authorize_follow_request,
      "write:follows"),
    R("POST", "/api/v1/follow_requests/{account_id}/reject", follow_requests.reject_follow_request, "write:follows"),
    R("GET", "/api/v1/directory", directory.get_directory, "read:accounts"),
    R("GET", "/api/v1/followed_tags", tags.get_followed_tags, "read:follows"),
    R("GET", "/api/v1/tags/{name}", tags.get_tag, "read:statuses"),
    R("POST", "/api/v1/tags/{name}/follow", tags.follow_tag, "write:follows"),
    R("POST", "/api/v1/tags/{name}/unfollow", tags.unfollow_tag, "write:follows"),
    R("GET", "/api/v1/featured_tags", tags.get_featured_tags, "read:accounts"),
    R("POST", "/api/v1/featured_tags", tags.create_featured_tag, "write:accounts"),
    R("GET", "/api/v1/featured_tags/suggestions", tags.get_featured_tag_suggestions, "read:accounts"),
    R("DELETE", "/api/v1/featured_tags/{id}", tags.delete_featured_tag, "write:accounts"),
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
