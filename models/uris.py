"""The URIs of our own objects. Federation serves them; the client API shows them as `uri`/`url`."""

from __future__ import annotations


def actor_uri(base_url: str, username: str, group: bool = False) -> str:
    return f"{base_url}/villages/{username}" if group else f"{base_url}/users/{username}"


def post_uri(base_url: str, author_uri: str, post_id: int) -> str:
    return f"{author_uri}/statuses/{post_id}"


def announce_uri(author_uri: str, post_id: int) -> str:
    return f"{author_uri}/statuses/{post_id}/activity"


def instance_actor_uri(base_url: str) -> str:
    return f"{base_url}/actor"
