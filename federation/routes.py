"""The federation routes: actor documents, collections, objects, WebFinger, host-meta and NodeInfo.

Every path here is outside /api/, so the client API's routes never collide with them.
"""

from __future__ import annotations

from aiohttp import web

from . import serving
from .nodeinfo import setup_nodeinfo_routes
from .webfinger import setup_webfinger_routes

# /users/{name}/... for residents, /villages/{slug}/... for villages.
_OWNERS = ("/users/{name}", "/villages/{slug}")


def setup_federation_routes(app: web.Application) -> None:
    """Add the federation routes to `app`."""
    setup_webfinger_routes(app)
    setup_nodeinfo_routes(app)
    app.router.add_get("/actor", serving.get_instance_actor_document)
    app.router.add_get("/users/{name}", serving.get_person)
    app.router.add_get("/villages/{slug}", serving.get_village_actor)
    for owner in _OWNERS:
        app.router.add_get(f"{owner}/outbox", serving.get_outbox)
        app.router.add_get(f"{owner}/followers", serving.get_followers)
        app.router.add_get(f"{owner}/following", serving.get_followers)
        app.router.add_get(owner + r"/statuses/{id:\d+}", serving.get_status)
        app.router.add_get(owner + r"/statuses/{id:\d+}/activity", serving.get_status_activity)
    # inbox routes (federation/inbox.py)
    from .inbox import add_inbox_routes

    add_inbox_routes(app)
