"""HttpTransport against real aiohttp servers on 127.0.0.1: fetch checks, redirects, caps, POST."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from voisinage.federation.retry import classify
from voisinage.federation.transport import (
    JSON_ACCEPT,
    BadContentType,
    BadJson,
    BadUrl,
    ForbiddenAddress,
    HttpStatus,
    HttpTransport,
    IdMismatch,
    LocalUrl,
    NetworkError,
    RedirectRefused,
    Timeout,
    Timeouts,
    TooLarge,
    Transport,
)

AS_JSON = "application/activity+json"
MIB = 1024 * 1024


@dataclass
class Peer:
    """A remote server on 127.0.0.1 that records what reached it."""

    base: str = ""
    port: int = 0
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    streamed: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.seen]


def _doc(request: web.Request, doc_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": doc_id if doc_id is not None else str(request.url), "type": "Note", **extra}


def _routes(peer: Peer) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/note")
    async def note(request: web.Request) -> web.Response:
        return web.json_response(_doc(request), content_type=AS_JSON)

    @routes.get("/ld")
    async def ld(request: web.Request) -> web.Response:
        ctype = request.query["ct"]
        return web.Response(body=b'{"id": "%s"}' % str(request.url).encode(),
                            headers={"Content-Type": ctype})

    @routes.get("/liar")
    async def liar(request: web.Request) -> web.Response:
        return web.json_response(_doc(request, "https://victim.example/users/admin"),
                                 content_type=AS_JSON)

    @routes.get("/anonymous")
    async def anonymous(request: web.Request) -> web.Response:
        return web.json_response({"type": "Note"}, content_type=AS_JSON)

    @routes.get("/actor")
    async def actor(request: web.Request) -> web.Response:
        return web.json_response(_doc(request, peer.url("/actor")), content_type=AS_JSON)

    @routes.get("/webfinger")
    async def webfinger(request: web.Request) -> web.Response:
        return web.json_response({"subject": "acct:a@b"}, content_type="application/jrd+json")

    @routes.get("/hop/{n}")
    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = f"/hop/{n - 1}" if n > 0 else "/note"
        raise web.HTTPFound(target)

    @routes.get("/canonical")
    async def canonical(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(peer.url("/actor"))

    @routes.get("/loop/a")
    async def loop_a(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop/b")

    @routes.get("/loop/b")
    async def loop_b(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop/a")

    @routes.get("/elsewhere")
    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://localhost:{peer.port}/note")

    @routes.get("/downgrade")
    async def downgrade(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"https://127.0.0.1:{peer.port}/note")

    @routes.get("/huge-stream")
    async def huge_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AS_JSON})
        await response.prepare(request)
        try:
            for _ in range(32):  # 32 x 64 KiB = 2 MiB, slowly
                await response.write(b" " * 65536)
                peer.streamed += 65536
                await asyncio.sleep(0.01)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return response

    @routes.get("/huge-declared")
    async def huge_declared(request: web.Request) -> web.Response:
        return web.Response(body=b" " * (2 * MIB), headers={"Content-Type": AS_JSON})

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await _wait(peer.release, SLOW_SECONDS)
        return web.json_response(_doc(request), content_type=AS_JSON)

    @routes.get("/drip")
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AS_JSON})
        await response.prepare(request)
        with _suppress_disconnect():
            for _ in range(40):
                await response.write(b" ")
                await asyncio.sleep(0.05)
        return response

    @routes.get("/missing")
    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    @routes.get("/not-json")
    async def not_json(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>", headers={"Content-Type": AS_JSON})

    @routes.get("/array")
    async def array(request: web.Request) -> web.Response:
        return web.Response(body=b"[1, 2]", headers={"Content-Type": AS_JSON})

    @routes.post("/inbox/{status}")
    async def inbox(request: web.Request) -> web.Response:
        peer.bodies.append(await request.read())
        status = int(request.match_info["status"])
        headers = {"Retry-After": request.query["ra"]} if "ra" in request.query else {}
        return web.Response(status=status, text=request.query.get("say", ""), headers=headers)

    @routes.post("/big-answer")
    async def big_answer(request: web.Request) -> web.Response:
        return web.Response(status=500, body=b"x" * (2 * MIB))

    @routes.post("/slow-inbox")
    async def slow_inbox(request: web.Request) -> web.Response:
        await _wait(peer.release, SLOW_SECONDS)
        return web.Response(status=202)

    return routes


# The slow routes answer after this long, or at once when the test ends (`peer.release`): far beyond the
# quick transport's 0.4 s, so that a loaded machine cannot blur which came first.
SLOW_SECONDS = 10.0


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


class _suppress_disconnect:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(
            exc_type, (ConnectionError, aiohttp.ClientConnectionResetError)
        )


@pytest.fixture
async def peer(aiohttp_server: Any) -> AsyncIterator[Peer]:
    state = Peer()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        state.seen.append(request)
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[record])
    app.add_routes(_routes(state))
    server = await aiohttp_server(app)
    state.port = server.port
    state.base = f"http://127.0.0.1:{server.port}"
    yield state
    state.release.set()


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    async with HttpTransport(allow_private_addresses=True, user_agent="VoisinageTest/1") as t:
        yield t


def _quick() -> HttpTransport:
    return HttpTransport(allow_private_addresses=True, timeouts=Timeouts(connect=0.5, total=0.4))


def _ld_url(peer: Peer, ctype: str) -> str:
    return str(URL(peer.url("/ld")).with_query(ct=ctype))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- get_json -------------------------------------------------------------------------------------


async def test_good_fetch(peer: Peer, transport: HttpTransport) -> None:
    final, doc = await transport.get_json(peer.url("/note"))
    assert final == peer.url("/note")
    assert doc == {"id": peer.url("/note"), "type": "Note"}
    request = peer.seen[0]
    assert "application/activity+json" in request.headers["Accept"]
    assert request.headers["User-Agent"] == "VoisinageTest/1"
    assert request.headers["Host"] == f"127.0.0.1:{peer.port}"
    assert "Date" in request.headers


async def test_fragment_is_not_part_of_the_id_check(peer: Peer, transport: HttpTransport) -> None:
    final, doc = await transport.get_json(peer.url("/actor#main-key"))
    assert doc["id"] == peer.url("/actor")
    assert peer.paths == ["/actor"]


@pytest.mark.parametrize(
    "ctype",
    [
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        'application/ld+json;profile="https://www.w3.org/ns/activitystreams https://x.example/p"',
        "application/activity+json; charset=utf-8",
        "Application/Activity+JSON",
    ],
)
async def test_activity_content_types_accepted(
    peer: Peer, transport: HttpTransport, ctype: str
) -> None:
    _, doc = await transport.get_json(_ld_url(peer, ctype), check_id=False)
    assert "/ld?ct=" in doc["id"]


@pytest.mark.parametrize(
    "ctype",
    [
        "application/ld+json",
        'application/ld+json; profile="https://example.com/other"',
        "application/json",
        "application/jrd+json",
        "text/html",
        "text/plain",
        "image/png",
    ],
)
async def test_wrong_content_type_refused(peer: Peer, transport: HttpTransport, ctype: str) -> None:
    with pytest.raises(BadContentType):
        await transport.get_json(_ld_url(peer, ctype), check_id=False)


async def test_plain_json_only_when_asked(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(BadContentType):
        await transport.get_json(peer.url("/webfinger"), check_id=False)
    _, doc = await transport.get_json(
        peer.url("/webfinger"), accept=JSON_ACCEPT, allow_json=True, check_id=False
    )
    assert doc == {"subject": "acct:a@b"}
    assert peer.seen[-1].headers["Accept"] == JSON_ACCEPT


async def test_id_mismatch_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(IdMismatch, match="victim.example"):
        await transport.get_json(peer.url("/liar"))


async def test_missing_id_refused_unless_unchecked(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(IdMismatch, match="no id"):
        await transport.get_json(peer.url("/anonymous"))
    _, doc = await transport.get_json(peer.url("/anonymous"), check_id=False)
    assert doc == {"type": "Note"}


async def test_cross_host_redirect_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(RedirectRefused, match="another origin"):
        await transport.get_json(peer.url("/elsewhere"))
    assert peer.paths == ["/elsewhere"]


async def test_scheme_change_redirect_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(RedirectRefused, match="another origin"):
        await transport.get_json(peer.url("/downgrade"))
    assert peer.paths == ["/downgrade"]


async def test_three_hops_followed(peer: Peer, transport: HttpTransport) -> None:
    final, doc = await transport.get_json(peer.url("/hop/2"))
    assert final == peer.url("/note") == doc["id"]
    assert peer.paths == ["/hop/2", "/hop/1", "/hop/0", "/note"]


async def test_two_hops_followed(peer: Peer, transport: HttpTransport) -> None:
    final, _ = await transport.get_json(peer.url("/hop/1"))
    assert final == peer.url("/note")
    assert peer.paths == ["/hop/1", "/hop/0", "/note"]


async def test_four_hops_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(RedirectRefused, match="more than 3"):
        await transport.get_json(peer.url("/hop/3"))
    assert peer.paths == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


async def test_redirect_loop_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(RedirectRefused, match="loop"):
        await transport.get_json(peer.url("/loop/a"))
    assert peer.paths == ["/loop/a", "/loop/b"]


async def test_id_may_be_the_url_first_asked_for(peer: Peer, transport: HttpTransport) -> None:
    """/canonical redirects to /actor, whose id is /actor: the final URL."""
    final, doc = await transport.get_json(peer.url("/canonical"))
    assert final == doc["id"] == peer.url("/actor")


async def test_sign_callback_called_on_every_hop(peer: Peer, transport: HttpTransport) -> None:
    calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None
             ) -> Mapping[str, str]:
        calls.append((method, url, dict(headers), body))
        return {**headers, "Signature": f'keyId="k",sig="{url}"'}

    await transport.get_json(peer.url("/hop/1"), sign=sign)
    urls = [peer.url(p) for p in ("/hop/1", "/hop/0", "/note")]
    assert [(c[0], c[1], c[3]) for c in calls] == [("GET", u, None) for u in urls]
    assert calls[0][2]["Host"] == f"127.0.0.1:{peer.port}"
    assert [r.headers["Signature"] for r in peer.seen] == [f'keyId="k",sig="{u}"' for u in urls]


async def test_http_error_status(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(HttpStatus) as caught:
        await transport.get_json(peer.url("/missing"))
    assert caught.value.status == 404


@pytest.mark.parametrize("path", ["/not-json", "/array"])
async def test_body_must_be_a_json_object(peer: Peer, transport: HttpTransport, path: str) -> None:
    with pytest.raises(BadJson):
        await transport.get_json(peer.url(path))


async def test_oversized_streamed_body_aborted_early(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(TooLarge):
        await transport.get_json(peer.url("/huge-stream"))
    await asyncio.sleep(0.15)  # let the server notice the closed connection
    assert MIB < peer.streamed < 2 * MIB - 4 * 65536


async def test_oversized_declared_body_refused(peer: Peer, transport: HttpTransport) -> None:
    with pytest.raises(TooLarge, match=str(2 * MIB)):
        await transport.get_json(peer.url("/huge-declared"))


async def test_smaller_cap_is_honoured(peer: Peer) -> None:
    async with HttpTransport(allow_private_addresses=True, max_document_bytes=10) as small:
        with pytest.raises(TooLarge):
            await small.get_json(peer.url("/note"))


async def test_slow_server_times_out(peer: Peer) -> None:
    async with _quick() as quick:
        started = asyncio.get_running_loop().time()
        with pytest.raises(Timeout):
            await quick.get_json(peer.url("/slow"))
        assert asyncio.get_running_loop().time() - started < SLOW_SECONDS / 2  # gave up, did not wait


async def test_dripping_body_times_out(peer: Peer) -> None:
    async with _quick() as quick:
        with pytest.raises(Timeout):
            await quick.get_json(peer.url("/drip"))


async def test_connection_refused_on_get() -> None:
    async with _quick() as quick:
        with pytest.raises(NetworkError):
            await quick.get_json(f"http://127.0.0.1:{_closed_port()}/x")


# -- refusals before any connection ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_private_address_refused_before_connecting(peer: Peer, host: str) -> None:
    async with HttpTransport() as guarded:
        with pytest.raises(ForbiddenAddress):
            await guarded.get_json(f"http://{host}:{peer.port}/note")
        result = await guarded.post(f"http://{host}:{peer.port}/inbox/202", b"{}", {})
    assert result.status == 0 and "refused" in (result.error or "")
    assert peer.seen == []


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001"])
async def test_non_canonical_ipv4_refused(peer: Peer, host: str) -> None:
    """Legacy numeric forms that getaddrinfo would map onto 127.0.0.1."""
    async with HttpTransport() as guarded:
        with pytest.raises((BadUrl, ForbiddenAddress)):
            await guarded.get_json(f"http://{host}:{peer.port}/note")
    assert peer.seen == []


class _StaticResolver(AbstractResolver):
    """Answers every name with one address: a hostile (rebinding) DNS server, or the test rig."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=self.address, port=port,
                              family=socket.AF_INET, proto=0, flags=0)]

    async def close(self) -> None:
        pass


async def test_name_rebound_to_loopback_refused(peer: Peer) -> None:
    async with HttpTransport(resolver=_StaticResolver("127.0.0.1")) as guarded:
        with pytest.raises(ForbiddenAddress, match="rebind.example resolves to 127.0.0.1"):
            await guarded.get_json(f"http://rebind.example:{peer.port}/note")
        result = await guarded.post(f"http://rebind.example:{peer.port}/inbox/202", b"{}", {})
    assert result.status == 0 and "loopback" in (result.error or "")
    assert peer.seen == []


async def test_custom_resolver_routes_names_when_private_allowed(peer: Peer) -> None:
    """How a test rig reaches made-up hosts: the document id carries the made-up name."""
    rig = HttpTransport(allow_private_addresses=True, resolver=_StaticResolver("127.0.0.1"))
    async with rig:
        final, doc = await rig.get_json(f"http://a.test:{peer.port}/note")
    assert final == doc["id"] == f"http://a.test:{peer.port}/note"
    assert peer.seen[0].headers["Host"] == f"a.test:{peer.port}"


async def test_local_hosts_never_fetched(peer: Peer) -> None:
    ours = HttpTransport(allow_private_addresses=True, local_hosts={f"127.0.0.1:{peer.port}"})
    async with ours:
        with pytest.raises(LocalUrl):
            await ours.get_json(peer.url("/note"))
        with pytest.raises(LocalUrl):
            await ours.post(peer.url("/inbox/202"), b"{}", {})
    assert peer.seen == []


def test_local_host_matching() -> None:
    t = HttpTransport(local_hosts={"Village.Example", "b.test:8443"})
    assert t.is_local("https://village.example/users/a")
    assert t.is_local("https://VILLAGE.example.:444/x")  # any port of a bare host entry
    assert t.is_local("https://b.test:8443/x")
    assert not t.is_local("https://b.test/x")
    assert not t.is_local("https://village.example.evil/x")
    assert not t.is_local("https://evilvillage.example/x")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "/relative", "https://u:p@example.com/"]
)
async def test_bad_urls_refused(transport: HttpTransport, url: str) -> None:
    with pytest.raises(BadUrl):
        await transport.get_json(url)
    with pytest.raises(BadUrl):
        await transport.post(url, b"{}", {})


async def test_not_started_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        await HttpTransport(allow_private_addresses=True).get_json("http://127.0.0.1:1/x")


# -- post -----------------------------------------------------------------------------------------


async def test_post_accepted_with_signature(peer: Peer, transport: HttpTransport) -> None:
    calls: list[tuple[str, str, bytes | None]] = []

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None
             ) -> Mapping[str, str]:
        calls.append((method, url, body))
        return {**headers, "Signature": "sig", "Digest": "SHA-256=abc"}

    body = b'{"type": "Create"}'
    result = await transport.post(
        peer.url("/inbox/202"), body, {"Content-Type": AS_JSON}, sign=sign
    )
    assert result.status == 202 and result.error is None and classify(result.status) == "ok"
    assert calls == [("POST", peer.url("/inbox/202"), body)]
    assert peer.bodies == [body]
    headers = peer.seen[0].headers
    assert headers["Signature"] == "sig" and headers["Digest"] == "SHA-256=abc"
    assert headers["Content-Type"] == AS_JSON


async def test_post_503_with_retry_after(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/inbox/503?ra=120"), b"{}", {})
    assert (result.status, result.retry_after_seconds) == (503, 120.0)
    assert classify(result.status) == "retry"


async def test_post_429_with_garbage_retry_after(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/inbox/429?ra=later"), b"{}", {})
    assert (result.status, result.retry_after_seconds) == (429, None)


async def test_retry_after_ignored_on_other_statuses(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/inbox/500?ra=60"), b"{}", {})
    assert (result.status, result.retry_after_seconds) == (500, None)


async def test_post_410_is_permanent(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/inbox/410?say=gone"), b"{}", {})
    assert result.status == 410 and result.error == "HTTP 410: gone"
    assert classify(result.status) == "permanent"


async def test_post_does_not_follow_redirects(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/inbox/307"), b"{}", {})
    assert result.status == 307
    assert peer.paths == ["/inbox/307"]


async def test_post_big_answer_is_cut(peer: Peer, transport: HttpTransport) -> None:
    result = await transport.post(peer.url("/big-answer"), b"{}", {})
    assert result.status == 500 and result.error is not None and len(result.error) < 300


async def test_post_connection_refused(transport: HttpTransport) -> None:
    result = await transport.post(f"http://127.0.0.1:{_closed_port()}/inbox", b"{}", {})
    assert result.status == 0 and result.error
    assert classify(result.status) == "retry"


async def test_post_timeout(peer: Peer) -> None:
    async with _quick() as quick:
        result = await quick.post(peer.url("/slow-inbox"), b"{}", {})
    assert result.status == 0 and "timed out" in (result.error or "")


def test_http_transport_is_a_transport() -> None:
    transport: Transport = HttpTransport()  # checked by mypy; at runtime, the methods exist
    assert callable(transport.get_json) and callable(transport.post)
