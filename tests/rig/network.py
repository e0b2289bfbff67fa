"""InProcessTransport: federation between test communes without sockets.

It implements the `Transport` protocol: each request is routed by host to that commune's aiohttp
TestClient, with the Host header set, so real signatures cross the seam and are verified by the real
inbox. Every request is recorded (`sent`) so tests can assert who received what, and who did not.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from yarl import URL

from voisinage.federation.signatures import http_date
from voisinage.federation.transport import (
    ACTIVITY_ACCEPT,
    BadJson,
    DeliveryResult,
    HttpStatus,
    IdMismatch,
    NetworkError,
    Signer,
    _check_content_type,
)


@dataclass
class Sent:
    """One request that went through the transport."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def host(self) -> str:
        return URL(self.url).host_port_subcomponent or ""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class InProcessTransport:
    """Routes requests by host to registered TestClients; unknown hosts are unreachable."""

    clients: dict[str, Any] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    def add(self, host: str, client: Any) -> None:
        self.clients[host] = client

    def _client(self, url: str) -> tuple[Any, URL, str]:
        parsed = URL(url)
        host = parsed.host_port_subcomponent or ""
        if host not in self.clients:
            raise NetworkError(f"cannot connect to {host}")
        return self.clients[host], parsed, host

    def _headers(self, host: str, extra: Mapping[str, str]) -> dict[str, str]:
        return {"Host": host, "Date": http_date(), **extra}

    async def get_json(self, url: str, *, sign: Signer | None = None, accept: str = ACTIVITY_ACCEPT,
                       allow_json: bool = False, check_id: bool = True) -> tuple[str, dict[str, Any]]:
        client, parsed, host = self._client(url)
        headers = self._headers(host, {"Accept": accept})
        if sign is not None:
            headers = dict(sign("GET", url, headers, None))
        async with client.get(parsed.path_qs, headers=headers, allow_redirects=False) as response:
            body = await response.read()
            self.sent.append(Sent("GET", url, headers, b"", response.status))
            if response.status != 200:
                raise HttpStatus(response.status)
            _check_content_type(response.headers.get("Content-Type"), allow_json)
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise BadJson("body is not a JSON object")
        if check_id and document.get("id") != url.split("#", 1)[0]:
            raise IdMismatch("document id is not the URL fetched")
        return url, document

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   sign: Signer | None = None) -> DeliveryResult:
        try:
            client, parsed, host = self._client(url)
        except NetworkError as exc:
            self.sent.append(Sent("POST", url, dict(headers), body, 0))
            return DeliveryResult(0, None, str(exc))
        out = self._headers(host, headers)
        if sign is not None:
            out = dict(sign("POST", url, out, body))
        async with client.post(parsed.path_qs, data=body, headers=out) as response:
            answer = await response.read()
            self.sent.append(Sent("POST", url, out, body, response.status))
            error = None if 200 <= response.status < 300 else f"HTTP {response.status}: {answer[:200]!r}"
            return DeliveryResult(response.status, None, error)

    # -- what tests ask --

    def posts(self, host: str | None = None, kind: str | None = None) -> list[Sent]:
        """The POSTs (deliveries) sent, optionally only to `host` and of activity type `kind`."""
        return [s for s in self.sent if s.method == "POST" and (host is None or s.host == host)
                and (kind is None or (s.json or {}).get("type") == kind)]


@contextlib.asynccontextmanager
async def wired_to_loopback(rig: Any, now: float, **transport: Any) -> AsyncIterator[Any]:
    """`rig`'s commune with a real HTTP transport allowed to reach loopback receivers and a clock the
    test moves (`rig.clock["now"]`, starting at `now`)."""
    from voisinage.federation.context import FEDERATION
    from voisinage.federation.transport import HttpTransport

    ctx = rig.app[FEDERATION]
    client = HttpTransport(allow_private_addresses=True, local_hosts={ctx.domain}, **transport)
    await client.start()
    ctx.transport = client
    clock = {"now": now}
    ctx.clock = lambda: clock["now"]
    rig.clock = clock
    try:
        yield rig
    finally:
        await client.close()
