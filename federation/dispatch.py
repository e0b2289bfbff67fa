"""The registry of inbox handlers, keyed by (activity type, object type), and `dispatch`.

Handlers register with `@handles("Undo", "Follow")`; `dispatch` looks up (type, object type), then
(type, None), and otherwise logs "unhandled". Registering a key twice is an error at import time.
[Fedify ActivityListenerSet: registry with a duplicate guard and a fallback]
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from voisinage.models.actor import Actor

from .context import FederationContext
from .vocab import first, types_of

log = logging.getLogger("voisinage.federation.dispatch")


@dataclass
class InboxContext:
    """What a handler gets besides the activity: the federation context, the open write session, the
    actor whose key signed the delivery (already checked to be the activity's `actor`), and whether its
    host was found a partner, not blocked, in this transaction (read with the signer: checks of the
    signer's host need not ask again)."""

    ctx: FederationContext
    session: AsyncSession
    signer: Actor
    signer_host_is_partner: bool = False


Handler = Callable[[InboxContext, dict[str, Any]], Awaitable[None]]
_REGISTRY: dict[tuple[str, str | None], Handler] = {}


class DuplicateHandler(RuntimeError):
    """Two handlers registered for the same (activity type, object type)."""


def handles(activity_type: str, object_type: str | None = None) -> Callable[[Handler], Handler]:
    """Decorator: register the handler for `activity_type` whose object is of `object_type` (None: any)."""

    def register(handler: Handler) -> Handler:
        key = (activity_type, object_type)
        if key in _REGISTRY:
            raise DuplicateHandler(f"two handlers for {key}")
        _REGISTRY[key] = handler
        return handler

    return register


def object_type_of(activity: dict[str, Any]) -> str | None:
    """The type of the activity's embedded object, or None when the object is a bare id."""
    obj = first(activity.get("object"))
    types = sorted(types_of(obj))
    return types[0] if types else None


def find_handler(activity: dict[str, Any]) -> Handler | None:
    """The handler for this activity, or None."""
    _load_handlers()
    object_type = object_type_of(activity)
    for activity_type in sorted(types_of(activity)):
        for key in ((activity_type, object_type), (activity_type, None)):
            if key in _REGISTRY:
                return _REGISTRY[key]
    return None


async def dispatch(ictx: InboxContext, activity: dict[str, Any]) -> bool:
    """Run the matching handler; False (and a log line) when no handler wants this activity."""
    handler = find_handler(activity)
    if handler is None:
        log.info("unhandled activity %s of type %s", activity.get("id"), activity.get("type"))
        return False
    await handler(ictx, activity)
    return True


def _load_handlers() -> None:
    """Import the handler modules once, so that their decorators fill the registry."""
    from .handlers import follow, like, note  # noqa: F401
