"""Fetching from a hostile partner, end to end: a real loopback server answers a.test's actor fetch
in every way SECURITY.md "Fetching" refuses, and nothing of it is stored.

The transport is the real one (`HttpTransport`); the guard is switched off only where the test server
must be reached on 127.0.0.1, and left on for the address cases (a name resolving to loopback).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from voisinage.federation.actors import ApParseError, get_remote_actor
from voisinage.federation.context import FEDERATION
from voisinage.federation.keys import public_pem_of
from voisinage.federation.partners import add_partner
from voisinage.federation.transport import FetchError, ForbiddenAddress, HttpTransport, Timeouts
from voisinage.models.actor import Actor
from voisinage.models.db import write_session
from voisinage.models.instance import Instance

from ..federation.partner_helpers import rsa_pair

AP = "application/activity+json"


def person(origin: str, path: str, **extra: Any) -> dict[str, Any]:
    uri = f"{origin}{path}"
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": uri, "type": "Person",
            "preferredUsername": path.rsplit("/", 1)[-1], "inbox": f"{uri}/inbox",
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_pem_of(rsa_pair(0)[0])},
            **extra}


class Hostile:
    """A partner that answers each path with one misbehaviour; records what was asked."""

    def __init__(self) -> None:
        self.origin = ""
        self.port = 0
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        name = request.path.rsplit("/", 1)[-1]
        doc = person(self.origin, request.path)
        if name == "good":
            return web.Response(body=orjson.dumps(doc), content_type=AP)
        if name == "plainjson":
            return web.Response(body=orjson.dumps(doc), content_type="application/json")
        if name == "ldnoprofile":
            return web.Response(body=orjson.dumps(doc), headers={"Content-Type": "application/ld+json"})
        if name == "html":
            return web.Response(text="<html>" + orjson.dumps(doc).decode(), content_type="text/html")
        if name == "otherid":
            return web.Response(body=orjson.dumps(person(self.origin, "/users/good")), content_type=AP)
        if name == "crosshost":  # the same server under another name: another origin all the same
            raise web.HTTPFound(f"http://localhost:{self.port}/users/good")
        if name == "toloopback":
            raise web.HTTPFound(f"http://127.0.0.2:{self.port}/users/good")
        if name == "loop":
            raise web.HTTPFound("/users/loop2")
        if name == "loop2":
            raise web.HTTPFound("/users/loop")
        if name.startswith("hop"):  # hop4 -> hop3 -> ... -> hop0, hop3's document (fetched from hop3)
            left = int(name[3:])
            if left > 0:
                raise web.HTTPFound(f"/users/hop{left - 1}")
            return web.Response(body=orjson.dumps(person(self.origin, "/users/hop3")), content_type=AP)
        if name == "huge":
            return web.Response(body=orjson.dumps({**doc, "summary": "x" * (2 << 20)}), content_type=AP)
        if name == "stream":  # no Content-Length: the cap must cut the stream itself
            response = web.StreamResponse(headers={"Content-Type": AP})
            await response.prepare(request)
            await response.write(orjson.dumps(doc)[:-1] + b', "pad": "')
            for _ in range(40):
                await response.write(b"y" * 65536)
            return response
        if name == "slow":
            await asyncio.sleep(5)
            return web.Response(body=orjson.dumps(doc), content_type=AP)
        if name == "nul":
            return web.Response(body=orjson.dumps({**doc, "name": "a\u0000b"}), content_type=AP)
        if name == "deep":
            return web.Response(body=orjson.dumps(doc)[:-1] + b', "x": ' + b"[" * 200 + b"]" * 200 + b"}",
                                content_type=AP)
        raise web.HTTPNotFound()


@pytest.fixture
async def hostile(commune: Any, aiohttp_server: Any) -> Any:
    state = Hostile()
    app = web.Application()
    app.router.add_get("/{tail:.*}", state.handle)
    server = await aiohttp_server(app)
    state.port = server.port
    state.origin = f"http://127.0.0.1:{server.port}"
    async with write_session(commune.sessionmaker) as session:
        await add_partner(session, f"127.0.0.1:{server.port}")
        await add_partner(session, f"localhost:{server.port}")
    ctx = commune.app[FEDERATION]
    transport = HttpTransport(allow_private_addresses=True, local_hosts={"a.test"}, timeouts=Timeouts(1.0, 1.0))
    await transport.start()
    saved, ctx.transport = ctx.transport, transport
    yield state
    ctx.transport = saved
    await transport.close()


async def fetch(commune: Any, uri: str) -> Actor:
    async with write_session(commune.sessionmaker) as session:
        return await get_remote_actor(commune.app[FEDERATION], session, uri)


REFUSED = ["plainjson", "ldnoprofile", "html", "otherid", "crosshost", "toloopback", "loop", "hop4", "huge",
           "stream", "slow", "nul", "deep"]


async def test_every_refused_answer_stores_nothing(commune: Any, hostile: Hostile) -> None:
    before = await commune.count(Actor)
    for name in REFUSED:
        with pytest.raises((FetchError, ApParseError)):
            await fetch(commune, f"{hostile.origin}/users/{name}")
        assert await commune.count(Actor) == before, name
    # the cross-host and loopback redirects were never followed
    assert "/users/good" not in hostile.seen
    # the rig itself works: three hops are followed, and a good document is stored
    assert (await fetch(commune, f"{hostile.origin}/users/hop3")).uri == f"{hostile.origin}/users/hop3"
    assert (await fetch(commune, f"{hostile.origin}/users/good")).uri == f"{hostile.origin}/users/good"
    assert await commune.count(Actor) == before + 2


class Rebinding(AbstractResolver):
    """A hostile DNS: every name is 127.0.0.1."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0,
                              flags=0)]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("host", ["partner.test", "127.0.0.1", "[::ffff:127.0.0.1]", "[::1]", "0.0.0.0",
                                  "169.254.169.254", "10.1.2.3", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]"])
async def test_guarded_fetch_of_a_private_address_sends_nothing_and_stores_nothing(
        commune: Any, hostile: Hostile, host: str) -> None:
    """With the guard on (production): a partner whose name or literal is a forbidden address."""
    ctx = commune.app[FEDERATION]
    guarded = HttpTransport(local_hosts={"a.test"}, resolver=Rebinding(), timeouts=Timeouts(1.0, 1.0))
    await guarded.start()
    ctx.transport = guarded
    try:
        async with write_session(commune.sessionmaker) as session:
            await add_partner(session, f"{host}:{hostile.port}")
        before = await commune.count(Actor)
        with pytest.raises(ForbiddenAddress):
            await fetch(commune, f"http://{host}:{hostile.port}/users/good")
        assert hostile.seen == [] and await commune.count(Actor) == before
        assert await commune.count(Instance, Instance.unavailable_since.is_not(None)) == 0
    finally:
        await guarded.close()
