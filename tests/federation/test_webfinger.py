"""WebFinger and host-meta, served and fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from voisinage.federation.actors import NotPartner, UnknownActor, resolve_handle
from voisinage.federation.context import FEDERATION
from voisinage.federation.partners import add_partner
from voisinage.federation.transport import HttpTransport
from voisinage.federation.webfinger import (
    WebFingerError,
    actor_uri_from_jrd,
    lookup_actor_uri,
)
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.server.app import create_app

from ..conftest import make_settings
from ..rig.commune import Commune


async def finger(client: Any, resource: str | None) -> tuple[int, Any, Any]:
    params = {"resource": resource} if resource is not None else {}
    response = await client.get("/.well-known/webfinger", params=params)
    body = await response.json(content_type=None) if response.status == 200 else await response.text()
    return response.status, body, response.headers


async def test_resident(rig: Any) -> None:
    status, jrd, headers = await finger(rig.client, "acct:alder@a.test")
    assert status == 200
    assert headers["Content-Type"].startswith("application/jrd+json")
    assert jrd["subject"] == "acct:alder@a.test"
    assert jrd["aliases"] == ["https://a.test/users/alder"]
    assert {"rel": "self", "type": "application/activity+json", "href": "https://a.test/users/alder"} in jrd["links"]


async def test_resident_case_insensitive_and_by_url(rig: Any) -> None:
    status, jrd, _ = await finger(rig.client, "acct:ALDER@A.test")
    assert status == 200 and jrd["subject"] == "acct:alder@a.test"
    status, jrd, _ = await finger(rig.client, "https://a.test/users/alder")
    assert status == 200 and jrd["subject"] == "acct:alder@a.test"


async def test_village_and_instance_actor(rig: Any) -> None:
    status, jrd, _ = await finger(rig.client, "acct:north@a.test")
    assert status == 200 and actor_uri_from_jrd(jrd) == "https://a.test/villages/north"
    status, jrd, _ = await finger(rig.client, "acct:actor@a.test")
    assert status == 200 and actor_uri_from_jrd(jrd) == "https://a.test/actor"


async def test_unknown_other_domain_and_missing(rig: Any) -> None:
    for resource in ("acct:nobody@a.test", "acct:alder@b.test", "acct:alder@a.test:8443", "alder",
                     "https://b.test/users/alder"):
        status, _, _ = await finger(rig.client, resource)
        assert status == 404, resource
    status, _, _ = await finger(rig.client, None)
    assert status == 400


async def test_port_is_part_of_the_domain(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(db_url, tmp_path, domain="a.test:8443")))
    await Commune(client).seed("alder")
    status, jrd, _ = await finger(client, "acct:alder@a.test:8443")
    assert status == 200 and jrd["subject"] == "acct:alder@a.test:8443"
    assert actor_uri_from_jrd(jrd) == "https://a.test:8443/users/alder"
    status, _, _ = await finger(client, "acct:alder@a.test")
    assert status == 404


async def test_host_meta(rig: Any) -> None:
    response = await rig.client.get("/.well-known/host-meta")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/xrd+xml")
    text = await response.text()
    assert 'template="https://a.test/.well-known/webfinger?resource={uri}"' in text


def test_jrd_without_activitypub_link_is_refused() -> None:
    with pytest.raises(WebFingerError):
        actor_uri_from_jrd({"subject": "acct:x@y", "links": [{"rel": "self", "type": "text/html",
                                                             "href": "https://y/x"}]})
    assert actor_uri_from_jrd({"links": {"rel": "self", "type": 'application/ld+json; profile="x"',
                                         "href": "https://y/x"}}) == "https://y/x"


# -- client side ------------------------------------------------------------------------------


async def test_lookup_and_resolve_handle(rig: Any, aiohttp_server: Any) -> None:
    """A partner on loopback over plain http: WebFinger falls back to http, then the actor is fetched."""
    seen: list[str] = []
    state: dict[str, str] = {}

    async def webfinger(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        if request.query.get("resource") != f"acct:rowan@{state['host']}":
            raise web.HTTPNotFound()
        return web.json_response({"subject": request.query["resource"], "links": [
            {"rel": "self", "type": "application/activity+json", "href": f"http://{state['host']}/u/rowan"}]},
            content_type="application/jrd+json")

    async def actor(request: web.Request) -> web.Response:
        seen.append(request.path)
        uri = f"http://{state['host']}/u/rowan"
        return web.json_response({"id": uri, "type": "Person", "preferredUsername": "rowan", "inbox": uri + "/inbox"},
                                 content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    app.router.add_get("/u/rowan", actor)
    server = await aiohttp_server(app)
    host = state["host"] = f"127.0.0.1:{server.port}"
    ctx = rig.app[FEDERATION]
    ctx.allow_private_addresses = True
    async with HttpTransport(allow_private_addresses=True, local_hosts={"a.test"}) as transport:
        ctx.transport = transport
        async with write_session(rig.sessionmaker) as session:
            with pytest.raises(NotPartner):
                await resolve_handle(ctx, session, f"@rowan@{host}")
        assert seen == []
        async with write_session(rig.sessionmaker) as session:
            await add_partner(session, host)
        assert await lookup_actor_uri(ctx, "rowan", host) == f"http://{host}/u/rowan"
        async with write_session(rig.sessionmaker) as session:
            found = await resolve_handle(ctx, session, f"@rowan@{host}")
            assert found.uri == f"http://{host}/u/rowan" and found.domain == host
            local = await resolve_handle(ctx, session, "@alder@a.test")
            assert local.local and local.username == "alder"
            with pytest.raises(UnknownActor):
                await resolve_handle(ctx, session, "nobody")
        assert await rig.count(Actor, Actor.domain == host) == 1
