"""ActivityStreams constants and the small helpers every parser needs for what peers really send.

Peers send `to` as a string or a list, objects embedded or as ids, `tag` as one object or a list
(bovine, GoToSocial, Lemmy): these helpers take any of those shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = {PUBLIC, "as:Public", "Public"}

AP_CONTENT_TYPES = ("application/activity+json", "application/ld+json")
AP_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AP_RESPONSE_TYPE = "application/activity+json"

ACTOR_TYPES = {"Person", "Group", "Application", "Service", "Organization"}
NOTE_TYPES = {"Note", "Question", "Article", "Page"}

CONTEXT = [
    AS_CONTEXT,
    SECURITY_CONTEXT,
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "Hashtag": "as:Hashtag",
        "PropertyValue": "schema:PropertyValue",
        "value": "schema:value",
        "schema": "http://schema.org#",
        "lemmy": "https://join-lemmy.org/ns#",
        "moderators": {"@id": "lemmy:moderators", "@type": "@id"},
        "audience": {"@id": "as:audience", "@type": "@id"},
    },
]


def as_list(value: Any) -> list[Any]:
    """`None` -> [], a single value -> [value], a list stays a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def get_id(value: Any) -> str | None:
    """The id of an embedded object or a bare id string; None for anything else."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def ids(values: Any) -> list[str]:
    return [i for i in (get_id(v) for v in as_list(values)) if i]


def first(values: Any) -> Any:
    items = as_list(values)
    return items[0] if items else None


def types_of(obj: Any) -> set[str]:
    if not isinstance(obj, dict):
        return set()
    return {t for t in as_list(obj.get("type")) if isinstance(t, str)}


def is_public(addresses: Iterable[str]) -> bool:
    return any(a in PUBLIC_ALIASES for a in addresses)
